"""A hand on a running job: pause and resume its processes, extend its timeout.

None of these is a state change: the job stays `processing` and keeps its
lease. Each writes a request on the job's row, conditioned on the run it
read (its claim token), and the worker that holds the job (on whatever host)
reads the request with its next lease renewal, within a second
(engine/claim.py `extend_lease`): it stops or continues the job's process
group (SIGSTOP, SIGCONT), and moves the run's deadline. The timeout's clock
does not run while the job is paused. The requests from people (pause,
resume) are recorded as events, as a cancel request is.
"""

from __future__ import annotations

from typing import Any, Iterable

from queuectl_tui.engine import events, queues, reads
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.durations import format_duration
from queuectl_tui.engine.jobspec import MAX_SECONDS
from queuectl_tui.engine.operator import unique
from queuectl_tui.engine.snooze import running_job
from queuectl_tui.engine.states import FINAL, State, describe_state
from queuectl_tui.engine.storage.columns import Claimed
from queuectl_tui.engine.storage.models import Job, NamedQueue
from queuectl_tui.errors import Conflict, UsageError

MAX_EXTEND_S = 30 * 86400.0  # one `extend`; a queue's max-timeout bounds the total
_PROCESSING = f"'{State.PROCESSING.value}'"


def pause(ctx: Context, job_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Ask the workers of these running jobs to stop their processes, all or
    nothing; each answer is "pausing" (asked now) or "paused" (already)."""
    return _ask(ctx, job_ids, True)


def resume(ctx: Context, job_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Ask the workers of these paused jobs to continue them, all or nothing;
    each answer is "resuming", or "running" (it was not paused)."""
    return _ask(ctx, job_ids, False)


def _ask(ctx: Context, job_ids: Iterable[str], stop: bool) -> list[tuple[str, str]]:
    verb = "paused" if stop else "resumed"
    answers = []
    with ctx.db.atomic():
        jobs = [_pausable(job_id, verb) for job_id in unique(job_ids)]
        now = ctx.clock.now()
        for job in jobs:
            if bool(job.pause_requested) == stop:
                answers.append((job.id, ("paused" if job.paused_at is not None else "pausing")
                                if stop else "running"))
                continue
            p = ctx.db.param
            cursor = ctx.db.execute_sql(
                f"UPDATE job SET pause_requested = {p}, updated_at = {p} WHERE seq = {p} "
                f"AND state = {_PROCESSING} AND claim_token = {p}",
                (stop, now, job.seq, job.claim_token))
            if cursor.rowcount != 1:
                raise Conflict(f"job {job.id} changed meanwhile; nothing was {verb}")
            events.record(job.id, State.PROCESSING, State.PROCESSING, at=now,
                          attempt=job.attempts, worker_id=job.worker_id,
                          note="pause requested: SIGSTOP to its process group" if stop
                          else "resume requested: SIGCONT to its process group")
            answers.append((job.id, "pausing" if stop else "resuming"))
    return answers


def _pausable(job_id: str, verb: str) -> Job:
    """A running job not being cancelled; else Conflict saying what would work."""
    job = reads.get(job_id)
    if job.state == State.PROCESSING and job.cancel_requested_at is None:
        return job
    if job.state == State.PROCESSING:
        why = "it is being cancelled"
    elif job.state in FINAL:
        why = "it has finished"
    else:
        why = "it is not running yet (hold keeps a waiting job from starting)"
    raise Conflict(f"job {job.id} is {describe_state(job.state)}; only a running job can be "
                   f"{verb}: {why}")


def extend(ctx: Context, job_id: str, token: str | None, seconds: float) -> dict[str, Any]:
    """Push the running job's timeout `seconds` further. `token`: the claim
    token of the run asking (from inside the job); None: any run of it.
    Refused (Conflict, nothing changed) if the job has no timeout, or if its
    queue has a max-timeout the new timeout would pass."""
    if not 0 < seconds <= MAX_EXTEND_S:
        raise UsageError(f"extend takes more than 0 and at most "
                         f"{format_duration(MAX_EXTEND_S)}, got {format_duration(seconds)}")
    with ctx.db.atomic():
        job = running_job(job_id, token, "extend its timeout")
        if not job.timeout:
            raise Conflict(f"job {job.id} has no timeout to extend (it runs until it ends)")
        before = job.extended_by or 0.0
        total = job.timeout + before + seconds
        most = NamedQueue.select(NamedQueue.max_timeout).where(
            NamedQueue.name == job.queue).scalar()
        if most is not None and total > most:
            raise Conflict(f"job {job.id}'s timeout would be {format_duration(total)}, past "
                           f"queue {job.queue}'s max-timeout {format_duration(most)}; "
                           "nothing was changed")
        if total > MAX_SECONDS:
            raise Conflict(f"job {job.id}'s timeout would be {format_duration(total)}; "
                           "nothing was changed")
        p = ctx.db.param
        now = ctx.clock.now()
        cursor = ctx.db.execute_sql(
            f"UPDATE job SET extended_by = {p}, updated_at = {p} WHERE seq = {p} "
            f"AND state = {_PROCESSING} AND claim_token = {p} "
            f"AND COALESCE(extended_by, 0) = {p}",
            (before + seconds, now, job.seq, job.claim_token, before))
        if cursor.rowcount != 1:
            raise Conflict(f"job {job.id} changed meanwhile; nothing was changed")
        events.record(job.id, State.PROCESSING, State.PROCESSING, at=now,
                      attempt=job.attempts, worker_id=job.worker_id,
                      note=f"timeout extended by {format_duration(seconds)} to "
                           f"{format_duration(total)}")
    return {"id": job.id, "timeout": job.timeout, "extended_by": before + seconds,
            "effective_timeout": total, "max_timeout": most}


def resume_for_stop(ctx: Context, claimed: Claimed) -> bool:
    """The job's worker is stopping and waits for its job to end: a paused job
    never would, so it is continued (the pause let go, its time folded into
    `paused_for`). False if the run is no longer this worker's."""
    p = ctx.db.param
    now = ctx.clock.now()
    with ctx.db.atomic():
        cursor = ctx.db.execute_sql(
            f"UPDATE job SET pause_requested = FALSE, paused_at = NULL, paused_for = "
            f"COALESCE(paused_for, 0) + CASE WHEN paused_at IS NULL THEN 0 ELSE {p} - "
            f"paused_at END, updated_at = {p} WHERE seq = {p} AND state = {_PROCESSING} "
            f"AND claim_token = {p}", (now, now, claimed.seq, claimed.claim_token))
        if cursor.rowcount != 1:
            return False
        events.record(claimed.id, State.PROCESSING, State.PROCESSING, at=now,
                      attempt=claimed.attempts, note="resumed: its worker is stopping")
    return True


def set_max_timeout(ctx: Context, name: str, seconds: float | None) -> dict[str, Any]:
    """The longest timeout `extend` may take a job of queue `name` to (None:
    no bound); a queue named here for the first time exists from now on."""
    if seconds is not None and not 0 < seconds <= MAX_SECONDS:
        raise UsageError(f"max-timeout takes more than 0 and at most "
                         f"{format_duration(MAX_SECONDS)}, or none")
    return queues.set_rules(ctx, name, max_timeout=seconds)
