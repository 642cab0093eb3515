"""A worker records how a run ended (and may claim its next job in the same
commit), or hands back a job it claimed but never started."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from queuectl_tui.engine import (attempts, claim, config, registry, retry_policy, snooze,
                                 transitions)
from queuectl_tui.engine.storage.columns import Claimed
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.states import State


@dataclass(frozen=True)
class Outcome:
    """What recording a run led to: the job's new state (None: the claim had been
    lost), the next job already claimed (if asked for), and whether to stop."""

    state: str | None
    next: Claimed | None
    stop: bool
    retry_at: float | None = None  # failed or snoozed: when it runs again (the pool's log)
    snoozed: str | None = None  # the snooze's note ("snoozed for 5m (1 of 10)")


def finish_and_claim(ctx: Context, claimed: Claimed, worker_id: str, *,
                     exit_code: int | None, error: str | None, stdout_tail: str = "",
                     stderr_tail: str = "", next_lease: float | None = None,
                     ended: str = attempts.EXIT, started_at: float | None = None,
                     log_offset: int | None = None,
                     usage: attempts.Usage | None = None, paused_s: float = 0.0) -> Outcome:
    """Record a run's outcome and, with `next_lease`, claim the next job in the
    same transaction: a busy worker pays one commit (one fsync) per job, and
    reads its stop flag there too (a stopping worker claims nothing).

    `ended` says how the run ended (attempts.REASONS): "cancelled" ends the
    job cancelled, "stopped" (its worker was stopped now) puts it back in
    the queue with this attempt not counted; a run that did not succeed is
    looked at once more for a snooze (engine/snooze.py), which puts it back
    too; otherwise the exit decides. `paused_s`: seconds the run spent
    paused (its processes stopped), kept with the job.
    """
    now = ctx.clock.now()
    job = held(claimed)
    outcome = dict(finished_at=now, exit_code=exit_code, lease_expires_at=None,
                   stdout_tail=stdout_tail, stderr_tail=stderr_tail, run_pid=None)
    if paused_s:
        outcome.update(paused_for=paused_s, paused_at=None, pause_requested=False)
    with ctx.db.atomic():
        snoozed = snooze.asked(ctx, claimed, ended, exit_code) \
            if error is not None or ended == attempts.SNOOZED else None
        note = error
        if snoozed is not None:
            ended = attempts.SNOOZED
            if snoozed.allowed:
                to, fields, error, note = State.PENDING, snoozed.fields(job, now), None, \
                    snoozed.note()
            else:
                error = note = snoozed.refusal()
                to, fields = _after_failure(job, now)
                fields["last_error"] = error
        else:
            to, fields = _decide(job, error, ended, now, exit_code)
        ok = transitions.move(ctx, job, to, token=claimed.claim_token, worker_id=worker_id,
                              note=note, **{**outcome, **fields})
        if ok:
            attempts.record(claimed.id, claimed.runs, started_at=started_at, ended_at=now,
                            exit_code=exit_code, reason=ended, error=error,
                            worker_id=worker_id, host=ctx.host, log_offset=log_offset,
                            usage=usage)
        # The claim takes nothing from a worker asked to stop (its SQL reads
        # the flag); the worker row is then written once, busy or idle.
        following = None if next_lease is None else claim.take(ctx, worker_id, next_lease, now)
        stop = registry.working(worker_id, now=now,
                                job_id=following.id if following else None,
                                done=int(ok and error is None and to != State.PENDING),
                                failed=int(ok and error is not None))
    again = to == State.FAILED or (snoozed is not None and to == State.PENDING)
    return Outcome(to if ok else None, following, stop,
                   fields.get("run_at") if ok and again else None,
                   note if ok and snoozed is not None else None)


def release(ctx: Context, claimed: Claimed, worker_id: str) -> bool:
    """Give back a job claimed with the last outcome but never started, because
    the worker is stopping: pending again, its attempt not counted."""
    with ctx.db.atomic():
        return transitions.move(
            ctx, held(claimed), State.PENDING, token=claimed.claim_token,
            worker_id=worker_id, note="handed back unstarted: worker stopping",
            attempts=claimed.attempts - 1, lease_expires_at=None, started_at=None,
            claim_token=None)


def held(claimed: Claimed) -> Job:
    """The job a worker holds, as the claim returned it (no read)."""
    return Job(seq=claimed.seq, id=claimed.id, state=State.PROCESSING,
               attempts=claimed.attempts, max_retries=claimed.max_retries,
               queue=claimed.queue, unique_key=claimed.unique_key,
               unique_for=claimed.unique_for, no_retry_on=claimed.no_retry_on)


def _decide(job: Job, error: str | None, ended: str, now: float,
            exit_code: int | None = None) -> tuple[State, dict[str, Any]]:
    """Where a run's job goes, and the fields that move sets."""
    if ended == attempts.CANCELLED:
        return State.CANCELLED, {"last_error": error}
    if ended == attempts.STOPPED:  # not the job's fault: not counted against its budget
        return State.PENDING, {"last_error": error, "attempts": job.attempts - 1,
                               "run_at": now, "finished_at": None}  # overrides the outcome's
    if error is None:
        return State.COMPLETED, {"last_error": None}
    rule = retry_policy.not_retried(job.no_retry_on, exit_code, ended)
    if rule:
        return State.DEAD, {"last_error": f"{error} (not retried: {rule})"}
    to, fields = _after_failure(job, now)
    fields["last_error"] = error
    return to, fields


def _after_failure(job: Job, now: float) -> tuple[State, dict[str, Any]]:
    """Retry with backoff while retries remain; otherwise the DLQ."""
    if retry_policy.out_of_retries(job.attempts, job.max_retries):
        return State.DEAD, {}
    delay = retry_policy.backoff_delay(float(config.get("backoff-base")), job.attempts,
                                       float(config.get("backoff-max")))
    return State.FAILED, {"run_at": now + delay}
