"""A worker takes the next due job and keeps its lease.

The claim is the one state change chosen by SQL (the next due job, by
priority, then run_at, then age), so it does not go through
`transitions.move`; it records its event through the same `events.record`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from queuectl_tui.engine import events, queues, registry
from queuectl_tui.engine.storage.columns import Claimed
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.procs import DEFAULT_GRACE_S
from queuectl_tui.engine.states import State



@dataclass(frozen=True)
class Lease:
    """What renewing a held job's lease found: whether it is still ours, and
    whether someone asked to cancel it (with the grace before SIGKILL)."""

    held: bool
    cancel_grace: float | None = None

    def __bool__(self) -> bool:
        return self.held


def claim(ctx: Context, worker_id: str, lease_seconds: float) -> Claimed | None:
    """Atomically take the next due job, and note it on the worker's row."""
    with ctx.db.atomic():
        now = ctx.clock.now()  # once the write lock is held
        claimed = take(ctx, worker_id, lease_seconds, now)
        if claimed is not None:  # same commit: no extra write
            registry.working(worker_id, now=now, job_id=claimed.id)
        return claimed


def take(ctx: Context, worker_id: str, lease_seconds: float, now: float) -> Claimed | None:
    """Take the next job; the caller writes the worker row (registry.working)."""
    token = os.urandom(8).hex()
    serving = queues.claimable(ctx.db, ctx.serving, lock=ctx.backend.lock_limited_claims)
    if ctx.serving is None:  # every queue: one global order (priority, due, age)
        serving = ctx.backend.by_head(serving, now)
    claimed = ctx.backend.claim(now, worker_id, token, now + lease_seconds, ctx.host, serving)
    if claimed is not None:
        events.record(claimed.id, claimed.prev_state, State.PROCESSING, at=now,
                      attempt=claimed.attempts, worker_id=worker_id)
    return claimed


def has_due_job(ctx: Context) -> bool:
    """A read-only look, so idle workers do not take the write lock for nothing.
    Only queues this process may claim from now count: a paused or full
    queue's due jobs must not wake it again and again."""
    return ctx.backend.has_due_job(ctx.clock.now(), queues.claimable(ctx.db, ctx.serving))


def next_run_at(ctx: Context) -> float | None:
    return ctx.backend.next_run_at(queues.claimable(ctx.db, ctx.serving))


def extend_lease(ctx: Context, claimed: Claimed, lease_seconds: float,
                 pid: int | None = None) -> Lease:
    """Heartbeat for a held job: still ours? asked to cancel?

    `pid` is the job's process group, so a rescuer can kill leftovers. It is
    written with the first lease extension (50 ms into the run), not at start:
    most jobs finish sooner and never pay for that write. The same statement
    reads the cancel request, so a cancel reaches the worker within a beat,
    on any host.
    """
    p = ctx.db.param
    rows = ctx.db.execute_sql(
        f"UPDATE job SET lease_expires_at = {p}, run_pid = COALESCE({p}, run_pid) "
        f"WHERE seq = {p} AND claim_token = {p} AND state = '{State.PROCESSING.value}' "
        "RETURNING cancel_requested_at, cancel_grace",
        (ctx.clock.now() + lease_seconds, pid, claimed.seq, claimed.claim_token)).fetchall()
    if not rows:
        return Lease(held=False)
    requested, grace = rows[0]
    if requested is None:
        return Lease(held=True)
    return Lease(held=True, cancel_grace=DEFAULT_GRACE_S if grace is None else grace)
