"""Flow control at the claim: rate limits, per-key limits and pool capacity.

Every rule is read and applied inside the claim's own transaction, so it holds
across every pool and host: on SQLite the claim holds the write lock; on
PostgreSQL claims count side by side under a shared advisory lock while every
rule has room for a start by each live worker, and alone near a limit
(engine/headroom.py, which reads every rule's state in one statement).

- A rate (`queue rate NAME N/PERIOD`) allows at most N starts in any window of
  PERIOD seconds: a sliding log of starts (engine/rates.py), not a fixed
  bucket, so no two windows can add up to 2N. A queue at its rate is
  left out of the claim like a paused one; idle workers sleep until the
  oldest start in the window leaves it (`reopens_at`).
- Per-key rules (`queue limit NAME --per-key N`, `queue rate ... --per-key`)
  leave out the keys at their limit: the claim walks past their jobs to the
  next job of a key with room. Jobs with no key are not limited per key.
- Capacity: a job's stated cpus, memory and GPUs must fit in what its pool
  has free (the pool's capacity minus its running jobs' needs). Only queues
  that have seen a job with needs pay for the check (`queue.needs`).

A job held back by any rule stays `pending`: no attempt is counted and no
state changes, so there is no second path that writes job rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import peewee as pw

from queuectl_tui.engine import headroom, rates
from queuectl_tui.engine.queues import Rules
from queuectl_tui.engine.resources import Capacity
from queuectl_tui.engine.states import State

if TYPE_CHECKING:
    from queuectl_tui.engine.context import Context
    from queuectl_tui.engine.storage.columns import Claimed

_PROCESSING = State.PROCESSING.value

@dataclass(frozen=True)
class Gate:
    """What the claim must leave out of one queue: keys at their limit, and jobs
    needing more than the pool has free (None: no capacity rule)."""

    full_keys: tuple[str, ...] = ()
    free: tuple[float, int, int] | None = None  # cpus, bytes, GPU devices

    def sql(self, p: str) -> tuple[str, list[Any]]:
        """The pick's extra conditions and their parameters."""
        text, params = "", []
        if self.full_keys:
            text += f" AND (key IS NULL OR key NOT IN ({', '.join([p] * len(self.full_keys))}))"
            params += list(self.full_keys)
        if self.free is not None:
            text += (f" AND COALESCE(cpus, 0) <= {p} AND COALESCE(mem, 0) <= {p}"
                     f" AND COALESCE(gpus, 0) <= {p}")
            params += [self.free[0] + 1e-9, self.free[1], self.free[2]]
        return text, params


@dataclass
class Gates:
    """What one claim may take: a gate per queue with a per-key rule or a
    capacity rule, the queues at their whole-queue rate, and (PostgreSQL,
    claims side by side) the queues too near a limit to count that way."""

    gates: dict[str, Gate]
    closed: set[str]
    tight: set[str]


def gates(ctx: Context, rules: Rules, names: list[str], now: float, *,
          claimers: bool) -> Gates:
    """Read the rules' state for `names` in one statement (engine/headroom.py);
    with `claimers` (backends whose claims run side by side), also which queues
    are too near a limit for claims that count side by side."""
    gated = [name for name in names if name in rules.rates or name in rules.key_limits
             or (name in rules.needs and ctx.capacity is not None)]
    if not gated:
        return Gates({}, set(), set())
    seen = headroom.read(ctx, rules, gated, now, claimers=claimers)
    out, closed, tight = {}, set(), set()
    for name in gated:
        rate = rules.rates.get(name)
        if rate is not None and not rate.per_key \
                and seen.starts.get(name, {}).get(rates.WHOLE, 0) >= rate.limit:
            closed.add(name)
            continue
        full: set[str] = set()
        limit = rules.key_limits.get(name)
        if limit:
            full |= {key for key, n in seen.running.get(name, {}).items() if n >= limit}
        if rate is not None and rate.per_key:
            full |= {key for key, n in seen.starts.get(name, {}).items() if n >= rate.limit}
        room = None
        if name in rules.needs and ctx.capacity is not None:
            cpus, mem, devices = seen.free(ctx.capacity)
            room = (cpus, mem, len(devices))
        if full or room is not None:
            out[name] = Gate(tuple(sorted(full)), room)
        if claimers and not headroom.roomy(rules, name, seen, ctx.capacity):
            tight.add(name)
    return Gates(out, closed, tight)


def used(db: pw.Database, pool: str | None) -> tuple[float, int, set[str]]:
    """Cores, bytes and GPU devices held by a pool's running jobs."""
    p = db.param
    rows = db.execute_sql(
        f"SELECT cpus, mem, devices FROM job WHERE state = '{_PROCESSING}' AND run_pool = {p}",
        (pool,)).fetchall()
    devices: set[str] = set()
    for row in rows:
        devices.update(d for d in (row[2] or "").split(",") if d)
    return (sum(r[0] or 0.0 for r in rows), sum(r[1] or 0 for r in rows), devices)


def after_claim(ctx: Context, rules: Rules, claimed: Claimed, now: float) -> Claimed:
    """In the claim's transaction: count the start against the queue's rate, and
    hand a GPU job its devices."""
    rate = rules.rates.get(claimed.queue)
    if rate is not None and not ctx.backend.starts_in_claim:
        rates.record(ctx.db, ctx.backend, claimed.queue, rate, claimed.key, now)
    if claimed.gpus and ctx.capacity is not None:
        devices = ",".join(ctx.capacity.free_after(*used(ctx.db, ctx.pool))[2][:claimed.gpus])
        ctx.db.execute_sql(f"UPDATE job SET devices = {ctx.db.param} WHERE seq = {ctx.db.param}",
                           (devices, claimed.seq))
        return replace(claimed, devices=devices)
    return claimed


def _running_keys_at(db: pw.Database, queue: str, limit: int) -> set[str]:
    p = db.param
    rows = db.execute_sql(
        f"SELECT key FROM job WHERE state = '{_PROCESSING}' AND queue = {p} AND key IS NOT NULL "
        f"GROUP BY key HAVING COUNT(*) >= {p}", (queue, limit)).fetchall()
    return {row[0] for row in rows}


def pool_of(host: str, supervisor_pid: int | None, worker_id: str) -> str:
    """A pool's name: its host and supervisor (a lone worker is its own pool)."""
    return f"{host}:{supervisor_pid}" if supervisor_pid else f"{host}:{worker_id}"


def pool_usage(db: pw.Database, workers: list[Any]) -> list[dict[str, Any]]:
    """Each live pool among `workers` (registry rows) with its capacity, what its
    running jobs hold and what is free: the Workers view and `worker list`."""
    pools: dict[str, Any] = {}
    for w in workers:
        if w.pool and w.pool not in pools:
            pools[w.pool] = w
    out = []
    for name, w in pools.items():
        capacity = Capacity.from_json(w.capacity)
        held = used(db, name)
        row: dict[str, Any] = {"pool": name, "host": w.host,
                               "workers": sum(1 for x in workers if x.pool == name),
                               "capacity": None, "used": {"cpus": held[0], "mem": held[1],
                                                          "gpus": sorted(held[2])},
                               "free": None}
        if capacity is not None:
            cpus, mem, devices = capacity.free_after(*held)
            row["capacity"] = {"cpus": capacity.cpus, "mem": capacity.mem,
                               "gpus": list(capacity.gpus)}
            row["free"] = {"cpus": round(cpus, 3), "mem": mem, "gpus": devices}
        out.append(row)
    return out


def why_waiting(db: pw.Database, job: Any, workers: list[Any], now: float) -> str | None:
    """Why a due, claimable job is not running, in words (None: nothing holds it
    back, or it is not waiting): `show` and the console's detail pane."""
    if job.state not in (State.PENDING, State.FAILED) or job.run_at > now:
        return None
    from queuectl_tui.engine.queues import read_rules
    from queuectl_tui.engine.resources import Needs, why_never
    rules = read_rules(db)
    if job.queue in rules.paused:
        return f"its queue {job.queue} is paused"
    needs = Needs(job.cpus or 0.0, job.mem or 0, job.gpus or 0)
    capacities = [c for c in (Capacity.from_json(w.capacity) for w in workers) if c]
    never = why_never(needs, capacities)
    if never:
        return never
    rate = rules.rates.get(job.queue)
    reopen = None if rate is None else rates.reopens_for(db, job.queue, rate, job.key, now)
    if reopen is not None:
        whose = f"key {job.key}" if rate.per_key else f"queue {job.queue}"
        return (f"{whose} is at its rate ({rate.describe()}); the next start is allowed "
                f"in {max(0.0, reopen - now):.1f}s")
    limit = rules.key_limits.get(job.queue)
    if limit and job.key is not None and job.key in _running_keys_at(db, job.queue, limit):
        return f"key {job.key} has {limit} running, its limit in queue {job.queue}"
    pools = {w.pool: w.capacity for w in workers if w.pool}  # each pool read once
    if needs and capacities and not any(_fits_now(db, pool, text, needs)
                                        for pool, text in pools.items()):
        return f"needs {needs.describe()}; no pool has that free now"
    return None


def _fits_now(db: pw.Database, pool: str, capacity_text: str | None, needs: Any) -> bool:
    capacity = Capacity.from_json(capacity_text)
    if capacity is None:
        return True
    cpus, mem, devices = capacity.free_after(*used(db, pool))
    return needs.cpus <= cpus + 1e-9 and needs.mem <= mem and needs.gpus <= len(devices)
