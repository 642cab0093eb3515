"""A running job asks to come back later: `queuectl snooze DURATION` from inside
it, or exit code 75 (EX_TEMPFAIL) from a script that cannot call queuectl.

The request is written on the job's row (`snooze_for`), conditioned on the
run's claim token, so a run that was rescued meanwhile changes nothing. The
run then ends (the command stops its own process group; a worker that finds
the request at its next lease renewal stops a run that outlived that), and
its outcome (engine/outcomes.py) puts the job back in the queue, due after the
delay, with the attempt the claim counted given back: a snooze is the job's
own "not yet", not a failure. It is bounded: at most `max-snoozes` in a run
series (a requeue or DLQ retry starts another); the snooze past that is a
failure with that reason, retried or dead by the ordinary rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from queuectl_tui.engine import attempts, config, reads
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.durations import format_duration
from queuectl_tui.engine.states import State, describe_state
from queuectl_tui.engine.storage.columns import Claimed
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.errors import Conflict, UsageError

EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): "try again later"
MAX_DELAY_S = 30 * 86400.0


@dataclass(frozen=True)
class Snooze:
    """A snooze a run ended with: how long, which one of the series, the bound."""

    delay: float
    number: int  # 1 for the series' first
    limit: int  # max-snoozes when the run ended

    @property
    def allowed(self) -> bool:
        return self.number <= self.limit

    def note(self) -> str:
        return f"snoozed for {format_duration(self.delay)} ({self.number} of {self.limit})"

    def refusal(self) -> str:
        return f"snoozed more than {self.limit} times (max-snoozes {self.limit})"

    def fields(self, job: Job, now: float) -> dict[str, Any]:
        """What the move back to pending sets: due after the delay, the claim's
        attempt given back, one more snooze counted, the request consumed."""
        return {"attempts": job.attempts - 1, "run_at": now + self.delay,
                "snoozes": self.number, "snooze_for": None, "finished_at": None,
                "last_error": None}


def check_delay(seconds: float) -> float:
    if not 0 <= seconds <= MAX_DELAY_S:
        raise UsageError(f"a snooze is at most {format_duration(MAX_DELAY_S)}, got "
                         f"{format_duration(seconds)}")
    return seconds


def running_job(job_id: str, token: str | None, doing: str) -> Job:
    """The job, if it is running (and, with `token`, still that run); else
    Conflict (exit 4), which says why. Inside the caller's transaction."""
    job = reads.get(job_id)
    if job.state != State.PROCESSING:
        raise Conflict(f"job {job.id} is {describe_state(job.state)}; only a running job "
                       f"can {doing}")
    if token is not None and job.claim_token != token:
        raise Conflict(f"this run of job {job.id} is over (rescued or stopped, and run "
                       "again); nothing was changed")
    return job


def request(ctx: Context, job_id: str, token: str | None, seconds: float) -> dict[str, Any]:
    """Ask the running job `job_id` to snooze for `seconds`. `token`: the claim
    token of the run asking (from inside the job); None: from outside it,
    whatever run holds it. Returns what was recorded, with the run's process
    group and host so the caller inside it can end the run at once."""
    check_delay(seconds)
    with ctx.db.atomic():
        job = running_job(job_id, token, "snooze")
        p = ctx.db.param
        cursor = ctx.db.execute_sql(
            f"UPDATE job SET snooze_for = {p}, updated_at = {p} WHERE seq = {p} "
            f"AND state = '{State.PROCESSING.value}' AND claim_token = {p}",
            (seconds, ctx.clock.now(), job.seq, job.claim_token))
        if cursor.rowcount != 1:
            raise Conflict(f"job {job.id} changed meanwhile; nothing was changed")
        limit = int(config.get("max-snoozes"))
    return {"id": job.id, "snooze_for": seconds, "number": job.snoozes + 1,
            "max_snoozes": limit, "run_pid": job.run_pid, "run_host": job.run_host}


def asked(ctx: Context, claimed: Claimed, ended: str, exit_code: int | None) -> Snooze | None:
    """Whether the run that just ended snoozed: it asked (`snooze_for` is set),
    or exited 75 (the delay then is `snooze-delay`). One read of the row,
    which the outcome makes only for a run that did not succeed: a completed
    run never pays for it. Inside the outcome's transaction."""
    if ended not in (attempts.EXIT, attempts.SNOOZED):
        return None
    p = ctx.db.param
    row = ctx.db.execute_sql(f"SELECT snoozes, snooze_for FROM job WHERE seq = {p} "
                             f"AND claim_token = {p}",
                             (claimed.seq, claimed.claim_token)).fetchone()
    if row is None:
        return None
    count, delay = row
    if delay is None:
        if ended == attempts.EXIT and exit_code != EXIT_CODE:
            return None
        delay = float(config.get("snooze-delay"))
    return Snooze(float(delay), int(count or 0) + 1, int(config.get("max-snoozes")))
