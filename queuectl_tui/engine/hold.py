"""Hold and release (pueue's stash): a person puts waiting jobs aside and lets
them go again.

A held job is a state of the one state machine (`held`), not a flag: the
claim takes only pending and failed rows, so nothing of the claim changes and
no worker can start a held job. Held is not final: retention keeps it and it
keeps its unique key. Both actions are all or nothing, like `cancel`: an id
that is no job refuses the lot (exit 3), a job in a state the action cannot
take refuses it (exit 4), and every move is conditioned on the state read, so
a job claimed meanwhile is seen running, never held while it runs.

Release decides from the job's dependencies now, by the rule
engine/dependencies.py applies to a blocked job: pending when every one has
completed (or is gone), blocked while one has not, cancelled naming it when
one ended dead or cancelled. A held job whose dependency ends dead, cancelled
or deleted is cancelled then, as a blocked one is (dependencies.on_final): by
the time it is released that dependency may have been pruned, and a pruned job
counts as completed.
"""

from __future__ import annotations

from typing import Iterable

from queuectl_tui.engine import dependencies, operator, reads, transitions
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.states import FINAL, HOLDABLE, State, describe_state
from queuectl_tui.errors import Conflict

ALREADY = "already held"  # the answer for a job that was held before the call
TRIES = 5  # a job changed state under us: read again, decide again


def hold(ctx: Context, job_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Hold pending, failed (waiting for a retry) and blocked jobs; returns (id,
    'held' or 'already held') pairs. A running job cannot be held (pause stops
    it where it is); a finished one has nothing to hold."""
    ids = operator.unique(job_ids)
    for _ in range(TRIES):
        try:
            with ctx.db.atomic():
                jobs = [reads.get(job_id) for job_id in ids]
                for job in jobs:
                    _refuse_hold(job)
                out: list[tuple[str, str]] = []
                for job in jobs:
                    if job.state == State.HELD:
                        out.append((job.id, ALREADY))
                    elif transitions.move(ctx, job, State.HELD, note=f"held (was {job.state})"):
                        out.append((job.id, State.HELD.value))
                    else:
                        raise _Moved()  # claimed or moved on: nothing of this try stands
                return out
        except _Moved:
            continue
    raise Conflict("the jobs kept changing state; nothing was held, try again")


def _refuse_hold(job: Job) -> None:
    if job.state == State.PROCESSING:
        raise Conflict(f"job {job.id} is {describe_state(job.state)}; a running job cannot "
                       f"be held (`queuectl pause {job.id}` stops it where it is); "
                       "nothing was held")
    if job.state in FINAL:
        raise Conflict(f"job {job.id} is {describe_state(job.state)}; there is nothing to "
                       "hold (requeue runs it again); nothing was held")
    if job.state not in (*HOLDABLE, State.HELD):
        raise Conflict(f"job {job.id} is {describe_state(job.state)}; nothing was held")


def release(ctx: Context, job_ids: Iterable[str]) -> list[tuple[str, str, str | None]]:
    """Let held jobs go; returns (id, new state, why) triples: 'pending', or
    'blocked' (why: the dependency it waits for), or 'cancelled' (why: which
    dependency ended how). Only held jobs can be released."""
    ids = operator.unique(job_ids)
    for _ in range(TRIES):
        try:
            with ctx.db.atomic():
                jobs = [reads.get(job_id) for job_id in ids]
                for job in jobs:
                    if job.state != State.HELD:
                        raise Conflict(f"job {job.id} is {describe_state(job.state)}, not "
                                       "held; nothing was released")
                # Dependencies are held FOR SHARE before the jobs are locked (the seq
                # order of engine/dependencies.py: a dependency is older than its jobs).
                where = dependencies.on_release(ids, ctx.backend.share_rows)
                out = []
                for job in jobs:
                    locked = transitions.locked_job(ctx, job.seq)
                    to, why = where[job.id]
                    if locked is None or locked.state != State.HELD \
                            or not _release_one(ctx, locked, to, why):
                        raise _Moved()
                    out.append((job.id, to, why))
                return out
        except _Moved:
            continue
    raise Conflict("the jobs kept changing state; nothing was released, try again")


def _release_one(ctx: Context, job: Job, to: str, why: str | None) -> bool:
    now = ctx.clock.now()
    if to == State.PENDING:
        # Due from now at the earliest: the wait for a worker (pickup delay) is
        # counted from the release, not from an enqueue long ago.
        return transitions.move(ctx, job, to, note="released",
                                run_at=max(job.run_at, now))
    if to == State.BLOCKED:
        return transitions.move(ctx, job, to, note=f"released: {why}")
    return transitions.move(ctx, job, to, note=f"released: {why}", last_error=why,
                            finished_at=now)


class _Moved(Exception):
    """A job was not in the state we read: roll back and look again."""
