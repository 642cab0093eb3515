"""Flow control at the claim: rate limits, per-key limits and pool capacity.

Every rule is read and applied inside the claim's own transaction, so it holds
across every pool and host: on SQLite the claim holds the write lock, and on
PostgreSQL a claim from a queue with any rule first takes the same advisory
lock as a limited queue's (`Backend.lock_limited_claims`), so such claims
happen one at a time and each counts what the previous one committed.

- A rate (`queue rate NAME N/PERIOD`) allows at most N starts in any window of
  PERIOD seconds: a sliding log of starts (`queue_start`) is counted, not a
  fixed bucket, so no two windows can add up to 2N. A queue at its rate is
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

from queuectl_tui.engine.queues import Rate, Rules
from queuectl_tui.engine.resources import Capacity
from queuectl_tui.engine.states import State

if TYPE_CHECKING:
    from queuectl_tui.engine.context import Context
    from queuectl_tui.engine.storage.columns import Claimed

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


def rated_closed(db: pw.Database, rules: Rules, names: list[str], now: float) -> set[str]:
    """Queues among `names` whose whole-queue rate is used up in the window ending now."""
    return {name for name in names
            if (rate := rules.rates.get(name)) and not rate.per_key
            and _starts(db, name, None, now - rate.period) >= rate.limit}


def gates(ctx: Context, rules: Rules, names: list[str], now: float) -> dict[str, Gate]:
    """A gate for each queue among `names` with a per-key rule or stated needs."""
    out: dict[str, Gate] = {}
    for name in names:
        rate = rules.rates.get(name)
        per_key_rate = rate if rate is not None and rate.per_key else None
        key_limit = rules.key_limits.get(name)
        needs = name in rules.needs and ctx.capacity is not None
        if not (per_key_rate or key_limit or needs):
            continue
        full: set[str] = set()
        if key_limit:
            full |= _running_keys_at(ctx.db, name, key_limit)
        if per_key_rate:
            full |= _rated_keys_at(ctx.db, name, per_key_rate, now)
        out[name] = Gate(tuple(sorted(full)), free(ctx) if needs else None)
    return out


def free(ctx: Context) -> tuple[float, int, int] | None:
    """What this process's pool has free now: its capacity minus its running jobs."""
    if ctx.capacity is None:
        return None
    cpus, mem, devices = used(ctx.db, ctx.pool)
    return (ctx.capacity.cpus - cpus, ctx.capacity.mem - mem,
            len([d for d in ctx.capacity.gpus if d not in devices]))


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
    if rate is not None:
        p = ctx.db.param
        key = claimed.key if rate.per_key else None
        ctx.db.execute_sql(f"INSERT INTO queue_start (queue, key, at) VALUES ({p}, {p}, {p})",
                           (claimed.queue, key, now))
        ctx.db.execute_sql(f"DELETE FROM queue_start WHERE queue = {p} AND at <= {p}",
                           (claimed.queue, now - rate.period))
    if claimed.gpus and ctx.capacity is not None:
        taken = used(ctx.db, ctx.pool)[2]
        given = [d for d in ctx.capacity.gpus if d not in taken][:claimed.gpus]
        devices = ",".join(given)
        ctx.db.execute_sql(f"UPDATE job SET devices = {ctx.db.param} WHERE seq = {ctx.db.param}",
                           (devices, claimed.seq))
        return replace(claimed, devices=devices)
    return claimed


def reopens_at(db: pw.Database, rules: Rules, names: list[str], now: float) -> float | None:
    """When the earliest rate-closed queue (or key) among `names` may start a job
    again: idle workers sleep until then instead of polling."""
    times: list[float] = []
    for name in names:
        rate = rules.rates.get(name)
        if rate is None:
            continue
        p = db.param
        since = now - rate.period
        if rate.per_key:
            rows = db.execute_sql(
                f"SELECT key, COUNT(*), MIN(at) FROM queue_start WHERE queue = {p} AND at > {p} "
                f"GROUP BY key HAVING COUNT(*) >= {p}", (name, since, rate.limit)).fetchall()
            times += [_nth_start(db, name, row[0], since, rate.limit) + rate.period
                      for row in rows]
        elif _starts(db, name, None, since) >= rate.limit:
            times.append(_nth_start(db, name, None, since, rate.limit) + rate.period)
    return min(times, default=None)


def window(db: pw.Database, name: str, rate: Rate, now: float) -> dict[str, Any]:
    """The rate's current window for people: starts used of allowed, and when the
    next start is allowed (None: now). Per key: the busiest key's."""
    since = now - rate.period
    p = db.param
    if rate.per_key:
        row = db.execute_sql(
            f"SELECT key, COUNT(*) AS n FROM queue_start WHERE queue = {p} AND at > {p} "
            f"GROUP BY key ORDER BY n DESC LIMIT 1", (name, since)).fetchone()
        key, count = (row[0], int(row[1])) if row else (None, 0)
    else:
        key, count = None, _starts(db, name, None, since)
    next_at = None
    if count >= rate.limit:
        next_at = _nth_start(db, name, key, since, rate.limit) + rate.period
    return {"limit": rate.limit, "period": rate.period, "per_key": rate.per_key,
            "rate": rate.describe(), "used": count, "next_start_at": next_at}


def _starts(db: pw.Database, queue: str, key: str | None, since: float) -> int:
    p = db.param
    if key is None:
        return int(db.execute_sql(f"SELECT COUNT(*) FROM queue_start WHERE queue = {p} "
                                  f"AND at > {p}", (queue, since)).fetchone()[0])
    return int(db.execute_sql(f"SELECT COUNT(*) FROM queue_start WHERE queue = {p} "
                              f"AND key = {p} AND at > {p}", (queue, key, since)).fetchone()[0])


def _nth_start(db: pw.Database, queue: str, key: str | None, since: float, n: int) -> float:
    """The time of the n-th latest start in the window: when it leaves the
    window, a start is allowed again."""
    p = db.param
    where, params = (f"queue = {p} AND at > {p}", [queue, since]) if key is None else \
        (f"queue = {p} AND key = {p} AND at > {p}", [queue, key, since])
    row = db.execute_sql(f"SELECT at FROM queue_start WHERE {where} ORDER BY at DESC "
                         f"LIMIT 1 OFFSET {int(n) - 1}", params).fetchone()
    return float(row[0]) if row else since


def _running_keys_at(db: pw.Database, queue: str, limit: int) -> set[str]:
    p = db.param
    rows = db.execute_sql(
        f"SELECT key FROM job WHERE state = '{_PROCESSING}' AND queue = {p} AND key IS NOT NULL "
        f"GROUP BY key HAVING COUNT(*) >= {p}", (queue, limit)).fetchall()
    return {row[0] for row in rows}


def _rated_keys_at(db: pw.Database, queue: str, rate: Rate, now: float) -> set[str]:
    p = db.param
    rows = db.execute_sql(
        f"SELECT key FROM queue_start WHERE queue = {p} AND at > {p} AND key IS NOT NULL "
        f"GROUP BY key HAVING COUNT(*) >= {p}", (queue, now - rate.period, rate.limit)).fetchall()
    return {row[0] for row in rows}


def pool_of(host: str, supervisor_pid: int | None, worker_id: str) -> str:
    """A pool's name: its host and supervisor (a lone worker is its own pool)."""
    return f"{host}:{supervisor_pid}" if supervisor_pid else f"{host}:{worker_id}"


def capacity_of(text: str | None) -> Capacity | None:
    return Capacity.from_json(text)
