"""Attempt records: one row per run of a job, kept for the job's whole life.

A requeue or a DLQ retry starts the retry budget afresh (`Job.attempts`), but
the record of every earlier run stays: its number counts every run the job
ever had (`Job.runs`), so `show`, `logs --attempt N` and the console can tell
a job's whole story. Written in the transaction that records the run's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from queuectl_tui.clock import iso
from queuectl_tui.engine.storage.models import Attempt

# How a run ended, a vocabulary of its own beside the job's states (a run
# "cancelled" ends its job in the state cancelled, but "stopped" puts it back).
# "exit": the command exited by itself (well or not).
# "oom": stopped for going over its memory limit (a failure, retried unless
# no_retry_on says oom).
# "snoozed": the job asked to come back later (`queuectl snooze`, exit code 75):
# not counted against its retries (engine/snooze.py).
REASONS = ("exit", "timeout", "cancelled", "stopped", "rescued", "lost", "oom", "snoozed")
EXIT, TIMEOUT, CANCELLED, STOPPED, RESCUED, LOST, OOM, SNOOZED = REASONS


def record(job_id: str, number: int, *, started_at: float | None, ended_at: float,
           exit_code: int | None, reason: str, error: str | None, worker_id: str | None,
           host: str | None, log_offset: int | None, usage: Usage | None = None) -> None:
    """Plain SQL: this runs once per job on the workers' hot path."""
    db = Attempt._meta.database
    p = db.param
    used = usage or NO_USAGE
    db.execute_sql(
        "INSERT INTO attempt (job_id, number, started_at, ended_at, exit_code, reason, error,"
        " worker_id, host, log_offset, peak_mem, cpu_s, mem_limit_by, devices)"
        f" VALUES ({', '.join([p] * 14)})",
        (job_id, number, started_at if started_at is not None else ended_at, ended_at,
         exit_code, reason, error, worker_id, host, log_offset, used.peak_mem, used.cpu_s,
         used.mem_limit_by, used.devices))


@dataclass(frozen=True)
class Usage:
    """What a run used, as its worker measured it (workers/runner.py)."""

    peak_mem: int | None = None  # bytes, the process tree's peak
    cpu_s: float | None = None  # user + system seconds
    mem_limit_by: str | None = None  # cgroup v2, cgroup v1, rlimit; None: no limit
    devices: str | None = None  # the GPUs it was given, "0,1"


NO_USAGE = Usage()


def for_job(job_id: str) -> list[dict[str, Any]]:
    """Every recorded run of a job, oldest first, in its public shape."""
    rows = Attempt.select().where(Attempt.job_id == job_id).order_by(Attempt.number, Attempt.seq)
    return [attempt_dict(a) for a in rows]


def attempt_dict(a: Attempt) -> dict[str, Any]:
    duration = None if a.ended_at is None else round(max(0.0, a.ended_at - a.started_at), 3)
    return {"number": a.number, "started_at": iso(a.started_at), "ended_at": iso(a.ended_at),
            "duration": duration, "exit_code": a.exit_code, "reason": a.reason,
            "error": a.error, "worker_id": a.worker_id, "host": a.host,
            "log_offset": a.log_offset, "peak_mem": a.peak_mem,
            "cpu_s": None if a.cpu_s is None else round(a.cpu_s, 3),
            "mem_limit_by": a.mem_limit_by, "devices": a.devices}


def remove(job_ids: list[str]) -> None:
    """With the jobs they belong to (delete, purge)."""
    if job_ids:
        Attempt.delete().where(Attempt.job_id.in_(job_ids)).execute()
