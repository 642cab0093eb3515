"""A worker takes the next due job and keeps its lease.

The claim is the one state change chosen by SQL (the next due job, by
priority, then run_at, then age), so it does not go through
`transitions.move`; it records its event through the same `events.record`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from queuectl_tui.engine import events, flow, queues, rates, registry
from queuectl_tui.engine.storage.columns import Claimed
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.procs import DEFAULT_GRACE_S
from queuectl_tui.engine.states import State



@dataclass(frozen=True)
class Lease:
    """What renewing a held job's lease found: whether it is still ours,
    whether someone asked to cancel it (with the grace before SIGKILL), and
    what the job's owners asked of the run meanwhile (engine/running.py,
    engine/snooze.py): its timeout as extended, whether its processes should
    be stopped (None: not known this time), whether it asked to snooze."""

    held: bool
    cancel_grace: float | None = None
    timeout: float | None = None  # seconds, its own plus what `extend` added
    paused: bool | None = None
    snooze: bool = False

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
    ctx.claim_again = False
    # The last claim counted side by side: this one most likely will too, so the
    # shared lock comes with the rules' read (one round trip fewer).
    locked = ctx.side_by_side
    rules = queues.read_rules(ctx.db, ctx.backend.shared_claims_lock if locked else "")
    serving = _lock_for_rules(ctx, rules, locked)
    if ctx.claim_again:
        return None
    serving = queues.claimable(ctx.db, serving, rules=rules)
    found = flow.gates(ctx, rules, serving, now, claimers=ctx.backend.concurrent_claims)
    # Side by side, a queue near a limit is left out this once and the next
    # claim counts alone; counting alone, it stays so while any rule is near.
    left_out = found.closed | (found.tight if ctx.side_by_side else set())
    if left_out:
        serving = [name for name in serving if name not in left_out]
    if ctx.backend.concurrent_claims:
        ctx.claim_alone = bool(found.tight)
        ctx.claim_again = ctx.side_by_side and bool(found.tight)
    if ctx.serving is None:  # every queue: one global order (priority, due, age)
        serving = ctx.backend.by_head(serving, now)
    starts = {name: (rules.rates[name].per_key, now - rules.rates[name].period)
              for name in serving if name in rules.rates}
    claimed = ctx.backend.claim(now, worker_id, token, now + lease_seconds, ctx.host, serving,
                                ctx.pool, found.gates or None, starts or None)
    if claimed is not None:
        if claimed.queue in rules.rates or claimed.gpus:
            claimed = flow.after_claim(ctx, rules, claimed, now)
        events.record(claimed.id, claimed.prev_state, State.PROCESSING, at=now,
                      attempt=claimed.attempts, worker_id=worker_id)
    return claimed


def _lock_for_rules(ctx: Context, rules: queues.Rules, locked: bool) -> list[str]:
    """The open queues this process serves, with the claims' lock taken when any
    has a rule (PostgreSQL): alone for a queue limit or near a flow limit, else
    shared with other claims (engine/headroom.py). Sets `ctx.side_by_side`.
    `locked`: the shared lock is held already; one held shared is never asked
    for alone (two claims doing that would deadlock): such a claim takes
    nothing and the next counts alone (`ctx.claim_again`)."""
    wanted = list(rules.names) if ctx.serving is None else ctx.serving
    open_ = [name for name in wanted if name not in rules.paused]
    ctx.side_by_side = False
    if ctx.backend.concurrent_claims and rules.gated(open_):
        alone = ctx.claim_alone or any(name in rules.limits for name in open_)
        if alone and locked:
            ctx.claim_alone = ctx.claim_again = True
            return []
        if not locked:
            ctx.backend.lock_limited_claims(shared=not alone)
        ctx.side_by_side = not alone
    return open_


def _open(ctx: Context, rules: queues.Rules, now: float) -> list[str]:
    """The queues this process may take from now: not paused, not at their
    limit, not at their rate (idle workers ask; a claim reads this in its gates)."""
    serving = queues.claimable(ctx.db, ctx.serving, rules=rules)
    if any(name in rules.rates for name in serving):
        closed = rates.closed(ctx.db, rules.rates, serving, now)
        serving = [name for name in serving if name not in closed]
    return serving


def has_due_job(ctx: Context) -> bool:
    """A read-only look, so idle workers do not take the write lock for nothing.
    Only queues this process may claim from now count: a paused, full or
    rate-closed queue's due jobs must not wake it again and again."""
    now = ctx.clock.now()
    return ctx.backend.has_due_job(now, _open(ctx, queues.read_rules(ctx.db), now))


def next_run_at(ctx: Context) -> float | None:
    """When a job may next be claimable by time alone: the earliest due job of an
    open queue, or the moment a rate-closed queue (or key) opens again."""
    now = ctx.clock.now()
    rules = queues.read_rules(ctx.db)
    due = ctx.backend.next_run_at(_open(ctx, rules, now))
    if not rules.rates:
        return due
    wanted = list(rules.names) if ctx.serving is None else ctx.serving
    reopens = rates.reopens_at(ctx.db, rules.rates, [n for n in wanted if n not in rules.paused], now)
    return min((t for t in (due, reopens) if t is not None), default=None)


def extend_lease(ctx: Context, claimed: Claimed, lease_seconds: float,
                 pid: int | None = None) -> Lease:
    """Heartbeat for a held job: still ours? asked to cancel, pause, snooze?
    its timeout extended?

    `pid` is the job's process group, so a rescuer can kill leftovers. It is
    written with the first lease extension (50 ms into the run), not at start:
    most jobs finish sooner and never pay for that write. The same statement
    reads the requests, so a cancel or a pause reaches the worker within a
    beat, on any host; it also keeps the pause's record, as the worker acts
    on it right after: `paused_at` set when a pause is asked, and on resume its
    time added to `paused_for` (both columns read before the update, as SQL
    assignments are).
    """
    p = ctx.db.param
    now = ctx.clock.now()
    rows = ctx.db.execute_sql(
        f"UPDATE job SET lease_expires_at = {p}, run_pid = COALESCE({p}, run_pid), "
        f"paused_at = CASE WHEN pause_requested THEN COALESCE(paused_at, {p}) END, "
        f"paused_for = CASE WHEN NOT pause_requested AND paused_at IS NOT NULL "
        f"THEN COALESCE(paused_for, 0) + {p} - paused_at ELSE paused_for END "
        f"WHERE seq = {p} AND claim_token = {p} AND state = '{State.PROCESSING.value}' "
        "RETURNING cancel_requested_at, cancel_grace, timeout, extended_by, "
        "pause_requested, snooze_for",
        (now + lease_seconds, pid, now, now, claimed.seq, claimed.claim_token)).fetchall()
    if not rows:
        return Lease(held=False)
    requested, grace, timeout, extended, paused, snooze_for = rows[0]
    if timeout and extended:
        timeout += extended
    cancel = None if requested is None else DEFAULT_GRACE_S if grace is None else grace
    return Lease(held=True, cancel_grace=cancel, timeout=timeout or None, paused=bool(paused),
                 snooze=snooze_for is not None)
