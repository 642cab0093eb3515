"""A job's columns, named once against the model: the ones a new row is written
with, the ones a listing reads, the ones the console's table shows and the
ones a claim returns. Each list is checked against `models.Job` when this
module loads, so a renamed column fails at once rather than in one path.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import peewee as pw

from queuectl_tui.engine.storage.models import Job

# Written by enqueue and by the staged bulk path, in this order.
JOB_INSERT: tuple[str, ...] = (
    "id", "command", "state", "attempts", "max_retries", "priority", "run_at", "timeout",
    "created_at", "updated_at", "cwd", "env", "queue", "schedule", "schedule_tick",
    "unique_key", "unique_for", "no_retry_on", "key", "cpus", "mem", "gpus", "progress_regex")
QUEUE_COLUMN = JOB_INSERT.index("queue")

# Read by `list` and `Queue.jobs` (a job's whole record but its output).
LISTED: tuple[str, ...] = (
    "seq", "id", "command", "state", "attempts", "max_retries", "priority", "run_at",
    "timeout", "created_at", "updated_at", "started_at", "finished_at", "exit_code",
    "last_error", "worker_id", "runs", "cwd", "env", "cancel_requested_at", "queue",
    "schedule", "schedule_tick", "unique_key", "no_retry_on", "key", "cpus", "mem", "gpus",
    "devices", "run_pool", "snoozes", "extended_by", "pause_requested", "paused_at",
    "paused_for", "failure_sig", "progress_regex", "progress_done", "progress_total",
    "progress_message", "progress_at")

# Read for the console's job table: what its columns and detail header show.
ROW: tuple[str, ...] = (
    "seq", "id", "command", "state", "attempts", "max_retries", "priority", "run_at",
    "created_at", "updated_at", "started_at", "finished_at", "exit_code", "last_error",
    "worker_id", "queue", "key", "pause_requested", "paused_at", "progress_done",
    "progress_total", "progress_at")


def _fields(names: tuple[str, ...]) -> tuple[pw.Field, ...]:
    return tuple(Job._meta.fields[name] for name in names)


LIST_FIELDS = _fields(LISTED)
ROW_FIELDS = _fields(ROW)
_fields(JOB_INSERT)


@dataclass(frozen=True)
class Claimed:
    """What a worker needs to run a job it now holds: the claim returns exactly
    these columns, in this order (`CLAIM_RETURNING`)."""

    seq: int
    id: str
    command: str
    attempts: int
    max_retries: int
    timeout: float | None
    prev_state: str
    claim_token: str
    runs: int = 1  # this claim's number in the job's whole life (its attempt record)
    cwd: str | None = None
    env: str | None = None  # JSON object text
    queue: str = "default"
    unique_key: str | None = None  # let go (or kept for unique_for) when it finishes
    unique_for: float | None = None
    no_retry_on: str | None = None  # "126,127,timeout": those end it in the DLQ at once
    key: str | None = None  # per-key limits (engine/flow.py)
    mem: int | None = None  # bytes: the run's memory limit
    gpus: int | None = None  # devices to hand it (engine/flow.py gives them after the claim)
    devices: str | None = None  # the GPU devices it was given: "0,1"
    progress_regex: str | None = None  # its output's progress pattern, else its queue's
    has_after: bool = False  # enqueued --after others: its run gets their ids


# Fields of `Claimed` the claim computes rather than reads: a look-up by key in
# the same statement each (engine/progress.py, engine/results.py).
COMPUTED = {
    "progress_regex": "COALESCE(progress_regex, "
                      "(SELECT q.progress_regex FROM queue q WHERE q.name = job.queue))",
    "has_after": "EXISTS (SELECT 1 FROM dependency d WHERE d.job_id = job.id)",
}
CLAIMED: tuple[str, ...] = tuple(field.name for field in fields(Claimed))
_fields(tuple(name for name in CLAIMED if name not in COMPUTED))
CLAIM_RETURNING = ("\n    RETURNING " + ", ".join(COMPUTED.get(name, name) for name in CLAIMED)
                   + "\n")
