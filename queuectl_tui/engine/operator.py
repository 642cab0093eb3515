"""What a person does to jobs: retry from the DLQ, cancel, requeue, delete,
purge, and ask workers to stop. Each is all or nothing, and every move is
conditioned on the state read, so a job that changed meanwhile is never
overwritten."""

from __future__ import annotations

from typing import Iterable, Iterator

from queuectl_tui.engine import (attempts, config, dependencies, events, logs, queues, reads,
                                 registry, transitions, uniqueness)
from queuectl_tui.engine.context import Context, processes_of
from queuectl_tui.engine.procs import DEFAULT_GRACE_S
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.states import FINAL, WAITING, State, describe_state, state_named
from queuectl_tui.errors import Conflict, UsageError

RETRIED = "retried from the DLQ"
DELETED = "deleted"  # an event's to_state when a job's row is removed (no job state)


class RunAgain(list):
    """The ids a requeue or DLQ retry moved, in order (a plain list to callers
    that only count them), and `states`: where each went, 'pending' or 'blocked'
    (a job it waits for has not completed), for a face that says which."""

    def __init__(self, states: dict[str, str]) -> None:
        super().__init__(states)
        self.states = states


def retry_dead(ctx: Context, job_ids: Iterable[str]) -> RunAgain:
    """DLQ retry: back to pending now (blocked while a job it waits for has not
    completed), attempts reset, all or nothing."""
    with ctx.db.atomic():
        jobs = [reads.get(job_id) for job_id in unique(job_ids)]
        for job in jobs:
            if job.state != State.DEAD:
                raise Conflict(f"job {job.id} is {describe_state(job.state)}, not dead; "
                               "only dead jobs can be retried from the DLQ")
        return _run_all_again(ctx, jobs, RETRIED, "retried")


def retry_all_dead(ctx: Context, queue: str | None = None) -> RunAgain:
    with ctx.db.atomic():
        query = Job.select(Job.seq, Job.id, Job.state, Job.attempts).where(
            Job.state == State.DEAD)
        if queue is not None:
            query = query.where(Job.queue == queues.check_name(queue))
        return _run_all_again(ctx, list(query.order_by(Job.seq)), RETRIED, "retried")


def requeue(ctx: Context, job_ids: Iterable[str]) -> RunAgain:
    """Run finished jobs (completed, dead, cancelled) again as the same jobs,
    all or nothing: the retry budget starts afresh, earlier attempts stay."""
    with ctx.db.atomic():
        jobs = [reads.get(job_id) for job_id in unique(job_ids)]
        for job in jobs:
            if job.state not in FINAL:
                raise Conflict(f"job {job.id} is {describe_state(job.state)}; only "
                               "completed, dead or cancelled jobs can be requeued")
        return _run_all_again(ctx, jobs, "requeued", "requeued")


def requeue_all(ctx: Context, state: str) -> RunAgain:
    state = state_named(state) or state
    if state not in FINAL:
        raise UsageError(f"--all-state takes one of {', '.join(FINAL)}, got {str(state)!r}")
    with ctx.db.atomic():
        jobs = list(Job.select(Job.seq, Job.id, Job.state, Job.attempts)
                    .where(Job.state == state).order_by(Job.seq))
        return _run_all_again(ctx, jobs, "requeued", "requeued")


def _run_all_again(ctx: Context, jobs: list[Job], note: str, doing: str) -> RunAgain:
    """Requeue or DLQ-retry these finished jobs, all or nothing (inside the
    caller's transaction), as a new run series (attempts and snoozes from
    0): each goes back to pending, or to blocked while a
    dependency has not completed; refused (Conflict, exit 4) if a dependency
    ended dead or cancelled or another job holds its unique key."""
    targets = dependencies.again([job.id for job in jobs], {job.id for job in jobs},
                                 ctx.backend.share_rows, doing)
    now = ctx.clock.now()
    for job in jobs:
        key = transitions.final_info(job)[1]
        if key:
            uniqueness.take_again(ctx.db, job.id, key, now, doing)
        if not transitions.move(ctx, job, targets[job.id], note=note, attempts=0, snoozes=0,
                                run_at=now, finished_at=None, claim_token=None,
                                cancel_requested_at=None, cancel_grace=None):
            raise Conflict(f"job {job.id} changed state meanwhile; nothing was {doing}")
    return RunAgain({job.id: targets[job.id] for job in jobs})


def cancel(ctx: Context, job_ids: Iterable[str],
           grace: float = DEFAULT_GRACE_S) -> list[tuple[str, str]]:
    """Cancel unfinished jobs, all or nothing; returns (id, what happened) pairs.

    A waiting job is `cancelled` at once. A running one is marked; its worker
    (on any host) reads the mark with its next lease renewal, within a
    second, sends SIGTERM to the job's process group, SIGKILL after `grace`,
    and records it `cancelled`: that job's answer is "stopping". Every move
    is conditioned on the state read, so a job claimed between our read and
    our write is seen running and stopped, never reported cancelled while
    it runs.
    """
    ids = unique(job_ids)
    for _ in range(5):
        try:
            with ctx.db.atomic():
                jobs = [reads.get(job_id) for job_id in ids]
                for job in jobs:
                    if job.state in FINAL:
                        raise Conflict(f"job {job.id} is {describe_state(job.state)}; "
                                       "there is nothing to cancel (requeue runs it again)")
                return [(job.id, _cancel_one(ctx, job, grace)) for job in jobs]
        except _Moved:
            continue  # a job changed state under us: read again, decide again
    raise Conflict("the jobs kept changing state; nothing was cancelled, try again")


def _cancel_one(ctx: Context, job: Job, grace: float) -> str:
    now = ctx.clock.now()
    if job.state in WAITING:
        if not transitions.move(ctx, job, State.CANCELLED, note=State.CANCELLED.value,
                                last_error=State.CANCELLED.value, finished_at=now):
            raise _Moved()
        return State.CANCELLED.value
    if job.cancel_requested_at is not None:
        return "stopping"  # asked already: the first request's grace stands
    p = ctx.db.param
    cursor = ctx.db.execute_sql(
        f"UPDATE job SET cancel_requested_at = {p}, cancel_grace = {p}, updated_at = {p} "
        f"WHERE seq = {p} AND state = '{State.PROCESSING.value}' AND claim_token = {p}",
        (now, grace, now, job.seq, job.claim_token))
    if cursor.rowcount != 1:
        raise _Moved()
    events.record(job.id, State.PROCESSING, State.PROCESSING, at=now, attempt=job.attempts,
                  worker_id=job.worker_id,
                  note=f"cancel requested: SIGTERM, then SIGKILL after {grace:g} s")
    return "stopping"


def delete(ctx: Context, job_ids: Iterable[str]) -> list[str]:
    """Remove jobs that are not running, with their logs; all or nothing.

    The DELETE is conditioned on the state each job was read in, in the
    same statement: a job claimed meanwhile is not deleted, and then
    nothing is (its outcome would otherwise be thrown away).
    """
    ids = unique(job_ids)
    with ctx.db.atomic():
        jobs = [reads.get(job_id) for job_id in ids]
        for job in jobs:
            if job.state == State.PROCESSING:
                raise Conflict(f"job {job.id} is {describe_state(job.state)}; cancel it "
                               "first or wait for it")
        _delete_rows(ctx, jobs, note="deleted")
    for job in jobs:
        logs.remove_log(ctx.opened.log_dir, job.seq)
    return ids


def purge_dead(ctx: Context) -> list[str]:
    with ctx.db.atomic():
        jobs = list(Job.select(Job.seq, Job.id, Job.state, Job.attempts)
                    .where(Job.state == State.DEAD))
        _delete_rows(ctx, jobs, note="purged from the DLQ")
    for job in jobs:
        logs.remove_log(ctx.opened.log_dir, job.seq)
    return [job.id for job in jobs]


def _delete_rows(ctx: Context, jobs: list[Job], *, note: str) -> None:
    """Delete these rows if each is still in the state read; else none (Conflict)."""
    now = ctx.clock.now()
    for chunk in _chunks(jobs, 500):
        for state in {j.state for j in chunk}:
            seqs = [j.seq for j in chunk if j.state == state]
            gone = list(Job.delete().where(Job.seq.in_(seqs), Job.state == state)
                        .returning(Job.queue).tuples().execute())
            if state in FINAL:  # the finished counters (metrics) keep them
                from queuectl_tui.engine import retention  # `status` never deletes
                retention.count_removed(ctx.db, state, [q for (q,) in gone])
            if len(gone) != len(seqs):
                moved = Job.select(Job.id, Job.state).where(
                    Job.seq.in_(seqs), Job.state != state).first()
                which = f"job {moved.id} became {moved.state}" if moved else "a job changed"
                raise Conflict(f"{which} meanwhile; nothing was deleted")
        attempts.remove([j.id for j in chunk])
        events.Event.insert_many([
            {"job_id": j.id, "from_state": j.state, "to_state": DELETED, "at": now,
             "attempt": j.attempts, "note": note} for j in chunk]).execute()
        gone = [j.id for j in chunk]
        dependencies.forget(gone)
        uniqueness.forget(gone)
        for job_id in gone:  # whatever waited for them will never run
            dependencies.on_final(ctx.db, job_id, DELETED, now, transitions.mover(ctx),
                                  ctx.backend.lock_rows)


def stop_workers(ctx: Context, worker_ids: list[str] | None = None,
                 now_grace: float | None = None, host: str | None = None,
                 pool: int | None = None) -> list[str]:
    """Ask live workers (all, or these, or those of `host`, or of the pool
    whose supervisor pid is `pool`) to stop after their current job, or,
    with `now_grace`, now: the running job gets SIGTERM, SIGKILL after the
    grace, and goes back to the queue with its attempt not counted.

    The flag in the database reaches workers on every host at their next
    heartbeat (within a second, running or idle); on this host the
    supervisor (or lone worker) also gets SIGTERM, which it treats as a
    graceful stop, so the stop starts at once.
    """
    flagged = registry.request_stop(now=ctx.clock.now(),
                                    lease=float(config.get("lease-seconds")),
                                    worker_ids=worker_ids, grace=now_grace,
                                    host=host, pool=pool)
    signalled: set[int] = set()
    for w in flagged:
        pid = w.supervisor_pid or w.pid
        if w.host == ctx.host and pid not in signalled:
            if worker_ids is not None and w.supervisor_pid:
                continue  # one worker of a pool: its flag is enough, spare its siblings
            if processes_of(ctx).ask_to_stop(pid):
                signalled.add(pid)
    return [w.id for w in flagged]


def unique(job_ids: Iterable[str]) -> list[str]:
    """Ids in the order given, each once (one id given as a bare string too)."""
    return list(dict.fromkeys([job_ids] if isinstance(job_ids, str) else job_ids))


class _Moved(Exception):
    """A job was not in the state we read: roll back and look again."""


def _chunks(items: list[Job], size: int) -> Iterator[list[Job]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
