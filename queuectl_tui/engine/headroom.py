"""What the flow rules of the queues a claim may take from see now, read in one
statement, and how far each rule is from binding.

On SQLite a claim holds the write lock, so what it reads cannot change before it
commits. PostgreSQL runs claims side by side; a rule can only be broken by claims
that count at the same moment, and a worker has at most one claim in flight.
So while a rule has room for one more start per live worker (its headroom),
claims may count side by side under a shared advisory lock; only near a limit
do they take the lock alone and count one after another (`Context.claim_alone`).
Registering a worker takes the lock alone too, so the number of claimers a
count relied on cannot grow under it. Rules nobody is near cost one read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from queuectl_tui.engine.queues import Rules
from queuectl_tui.engine.rates import WHOLE
from queuectl_tui.engine.registry import LIVE_STATES
from queuectl_tui.engine.resources import Capacity
from queuectl_tui.engine.states import State

if TYPE_CHECKING:
    from queuectl_tui.engine.context import Context

_LIVE = f"state IN ({', '.join(repr(state) for state in LIVE_STATES)})"
_RUNNING = f"state = '{State.PROCESSING.value}'"


@dataclass
class Seen:
    """One claim's reading of the rules' state."""

    claimers: int = 1  # live worker rows, and this process
    pool_claimers: int = 1  # ... of this process's pool
    running: dict[str, dict[str, int]] = field(default_factory=dict)  # queue -> key -> n
    starts: dict[str, dict[str, int]] = field(default_factory=dict)  # queue -> key -> n
    pool_jobs: list[tuple[float, int, str]] = field(default_factory=list)  # cpus, mem, devices

    def free(self, capacity: Capacity) -> tuple[float, int, list[str]]:
        """The pool's capacity minus what its running jobs hold."""
        taken = {d for _, _, devices in self.pool_jobs for d in devices.split(",") if d}
        return capacity.free_after(sum(c for c, _, _ in self.pool_jobs),
                                   sum(m for _, m, _ in self.pool_jobs), taken)


def read(ctx: Context, rules: Rules, names: list[str], now: float, *,
         claimers: bool) -> Seen:
    """Everything the gates of `names` need, in one round trip (a UNION ALL of
    tagged rows, the same SQL on both backends)."""
    p = ctx.db.param
    parts: list[str] = []
    params: list[object] = []
    num = "CAST({} AS DOUBLE PRECISION)"
    if claimers:
        parts.append(f"SELECT 'w', '', '', {num.format('COUNT(*)')}, 0 FROM worker WHERE {_LIVE}")
    if ctx.capacity is not None and any(name in rules.needs for name in names):
        if claimers:
            parts.append(f"SELECT 'p', '', '', {num.format('COUNT(*)')}, 0 FROM worker "
                         f"WHERE {_LIVE} AND pool = {p}")
            params.append(ctx.pool)
        parts.append(f"SELECT 'c', '', COALESCE(devices, ''), {num.format('COALESCE(cpus, 0)')}, "
                     f"{num.format('COALESCE(mem, 0)')} FROM job WHERE {_RUNNING} "
                     f"AND run_pool = {p}")
        params.append(ctx.pool)
    for name in names:
        if name in rules.key_limits:
            parts.append(f"SELECT 'k', queue, key, {num.format('COUNT(*)')}, 0 FROM job "
                         f"WHERE {_RUNNING} AND queue = {p} AND key IS NOT NULL "
                         "GROUP BY queue, key")
            params.append(name)
        rate = rules.rates.get(name)
        if rate is not None and rate.per_key:
            parts.append(f"SELECT 's', queue, key, {num.format('COUNT(*)')}, 0 FROM queue_start "
                         f"WHERE queue = {p} AND key <> '' AND at > {p} GROUP BY queue, key")
            params += [name, now - rate.period]
        elif rate is not None:  # counted up to its limit: enough to know if it is used up
            parts.append(f"SELECT 's', CAST({p} AS TEXT), '', {num.format('COUNT(*)')}, 0 "
                         f"FROM (SELECT 1 FROM queue_start WHERE queue = {p} AND key = '' "
                         f"AND at > {p} LIMIT {int(rate.limit)}) AS w")
            params += [name, name, now - rate.period]
    seen = Seen()
    if not parts:
        return seen
    for kind, queue, key, n, m in ctx.backend.run(" UNION ALL ".join(parts), params):
        if kind == "w":
            seen.claimers = int(n) + 1
        elif kind == "p":
            seen.pool_claimers = int(n) + 1
        elif kind == "c":
            seen.pool_jobs.append((float(n), int(m), key))
        elif kind == "k":
            seen.running.setdefault(queue, {})[key] = int(n)
        else:
            seen.starts.setdefault(queue, {})[key] = int(n)
    return seen


def roomy(rules: Rules, name: str, seen: Seen, capacity: Capacity | None) -> bool:
    """Whether every rule of queue `name` has room for a start by each live
    worker at once: then claims may count side by side."""
    rate = rules.rates.get(name)
    if rate is not None:
        if rate.per_key:
            return False  # which keys are near their rate would cost a read per key
        if seen.starts.get(name, {}).get(WHOLE, 0) + seen.claimers > rate.limit:
            return False
    limit = rules.key_limits.get(name)
    if limit and max(seen.running.get(name, {}).values(), default=0) + seen.claimers > limit:
        return False
    if name in rules.needs and capacity is not None:
        cpus, mem, gpus = rules.needs[name]
        free_cpus, free_mem, _ = seen.free(capacity)
        room = seen.pool_claimers
        if gpus or free_cpus + 1e-9 < room * cpus or free_mem < room * mem:
            return False
    return True
