"""Taking back what nobody will finish: runs whose worker is gone, and blocked
jobs that nothing will ever release.

A lease is only evidence. Before acting, the rescuer takes the write lock and
looks again with a fresh clock; if getting the lock took long, every lease
holder was blocked as well (a long writer, a full disk), so leases are not
judged until one more lease period has passed. On this host a worker whose
process is alive keeps its job, whatever its lease says. What a rescue does to
the job is engine/retry_policy.py's decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import peewee as pw

from queuectl_tui.engine import attempts, config, dependencies, procs, registry, retry_policy
from queuectl_tui.engine import signatures, transitions
from queuectl_tui.engine.context import Context, processes_of
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.states import State

# Getting the write lock for a rescue took longer than this: everyone was blocked.
BLOCKED_S = 1.0
# On this host, a live worker keeps a job whose lease ran out this many leases ago
# (it may be retrying its outcome through a full disk); past that it is wedged.
LIVE_WORKER_GRACE = 6


@dataclass(frozen=True)
class Rescued:
    """A run taken back from a gone worker: what the pool's log says about it."""

    id: str
    worker_id: str | None  # the worker that held it
    attempt: int
    max_retries: int
    state: str  # where it went: pending, dead or cancelled
    note: str
    queue: str | None = None  # None before named queues


def rescue_runs(ctx: Context, worker_id: str | None = None, *,
                counted: bool = True) -> list[Rescued]:
    """Take back jobs whose worker is gone: lease expired, or `worker_id` known dead.

    A rescue counts as an attempt (a job that kills its worker ends in the DLQ);
    `counted=False` (the pool was stopped by force: its workers were killed on
    purpose) puts the jobs back without counting it. A job someone asked to
    cancel ends cancelled, not back in the queue.
    """
    if worker_id is None and ctx.clock.monotonic() < ctx.leases_trusted_from:
        return []
    lease = float(config.get("lease-seconds"))
    query = Job.select(Job.seq).where(Job.state == State.PROCESSING)
    if worker_id is None:
        query = query.where(Job.lease_expires_at < ctx.clock.now())
    else:
        query = query.where(Job.worker_id == worker_id)
    rescued = []
    for (seq,) in list(query.tuples()):
        outcome = _rescue_one(ctx, seq, worker_id, lease, counted)
        if outcome is None:
            break  # blocked: leases are not trusted for a while
        if outcome:
            rescued.append(outcome)
    return rescued


def _rescue_one(ctx: Context, seq: int, dead_worker: str | None, lease: float,
                counted: bool = True) -> Rescued | str | None:
    """Rescue one job if it still needs it: what was done, "" if not, None if blocked."""
    asked = ctx.clock.monotonic()
    try:
        with ctx.db.atomic():
            job = transitions.locked_job(ctx, seq)
            # A slow lock makes leases doubtful; a worker known dead is not.
            if dead_worker is None and ctx.clock.monotonic() - asked > BLOCKED_S:
                distrust_leases(ctx, lease)
                return None
            if job is None or job.state != State.PROCESSING or not _needs_rescue(
                    ctx, job, dead_worker, lease):
                return ""
            return _take_back(ctx, job, dead_worker, counted)
    except pw.OperationalError:
        distrust_leases(ctx, lease)  # could not even get the lock
        raise


def _needs_rescue(ctx: Context, job: Job, dead_worker: str | None, lease: float) -> bool:
    if dead_worker is not None:
        return job.worker_id == dead_worker
    now = ctx.clock.now()
    if job.lease_expires_at is None or job.lease_expires_at >= now:
        return False  # renewed while we waited for the lock
    if job.run_host == ctx.host and now - job.lease_expires_at < LIVE_WORKER_GRACE * lease:
        return not procs.worker_alive(registry.pid_of(job.worker_id), job.worker_id)
    return True


def _take_back(ctx: Context, job: Job, dead_worker: str | None,
               counted: bool = True) -> Rescued | str:
    """Kill what is left of the run on this host, then pending again (or dead,
    or cancelled if someone asked), with the run's attempt record."""
    now = ctx.clock.now()
    if job.run_host == ctx.host:  # so two runs never overlap
        processes_of(ctx).kill_run(job.run_pid, job.claim_token)
    verdict = retry_policy.rescue(
        worker_id=job.worker_id, worker_known_dead=dead_worker is not None,
        cancel_requested=job.cancel_requested_at is not None, counted=counted,
        attempts=job.attempts, max_retries=job.max_retries, now=now)
    fields = dict(verdict.fields)
    if verdict.to == State.DEAD:
        fields["failure_sig"] = signatures.signature(None, attempts.RESCUED, None, verdict.note)
    moved = transitions.move(ctx, job, verdict.to, token=job.claim_token,
                             worker_id=job.worker_id, note=verdict.note,
                             last_error=verdict.note, lease_expires_at=None, run_pid=None,
                             **fields)
    if not moved:
        return ""
    attempts.record(job.id, job.runs, started_at=job.started_at, ended_at=now,
                    exit_code=None, reason=attempts.RESCUED, error=verdict.note,
                    worker_id=job.worker_id, host=job.run_host, log_offset=None)
    return Rescued(job.id, job.worker_id, job.attempts, job.max_retries, verdict.to,
                   verdict.note, getattr(job, "queue", None))


def distrust_leases(ctx: Context, lease: float) -> None:
    """This process just waited long for the database (or could not write at
    all): so, most likely, did every lease holder. Judge no lease until they
    have had one whole lease period to renew."""
    ctx.leases_trusted_from = ctx.clock.monotonic() + lease


def release_stuck(ctx: Context, after_seq: int = 0, limit: int = dependencies.SWEEP_BATCH
                  ) -> tuple[list[tuple[str, str]], int]:
    """Settle blocked jobs that nothing will ever release (older versions
    could leave them so on PostgreSQL, see engine/dependencies.py): every
    dependency completed or gone, pending; one ended dead or cancelled,
    cancelled naming it, by the same moves as the normal path. Looks at the
    next `limit` blocked jobs after `after_seq`, with one read, and writes
    only for those it settles. Returns what moved (id, new state) and the
    seq to go on after (0: it reached the last blocked job)."""
    batch = dependencies.blocked_after(ctx.backend.blocked_page_sql, after_seq, limit)
    stuck = dependencies.verdicts([job_id for _, job_id in batch])
    moved = []
    for seq, job_id in batch:
        if job_id in stuck:
            to = _settle_stuck(ctx, seq, job_id)
            if to:
                moved.append((job_id, to))
    return moved, (batch[-1][0] if len(batch) == limit else 0)


def _settle_stuck(ctx: Context, seq: int, job_id: str) -> str | None:
    """Judge one stuck job again inside a write transaction, its dependencies
    held FOR SHARE and then itself FOR UPDATE (PostgreSQL; the seq order of
    engine/dependencies.py), so a dependency finishing or an operator acting
    meanwhile is seen, never overwritten. The new state, or None."""
    with ctx.db.atomic():
        verdict = dependencies.verdicts([job_id], ctx.backend.share_rows).get(job_id)
        job = transitions.locked_job(ctx, seq) if verdict else None
        if verdict is None or job is None or job.state != State.BLOCKED:
            return None
        to, dep, state = verdict
        now = ctx.clock.now()
        if to == State.PENDING:
            done = dependencies.release(job, "released: every dependency had completed "
                                        "(found stuck)", now, transitions.mover(ctx))
        else:
            done = dependencies.cancel(job, dep, state, now, transitions.mover(ctx))
        return to if done else None
