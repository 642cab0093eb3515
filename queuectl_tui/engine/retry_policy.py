"""What happens to a job whose run did not succeed: pure decisions, no SQL.

The outcome of a failed run (engine/outcomes.py) and a rescue of a run whose
worker is gone (engine/rescue.py) ask these, then make the move themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from queuectl_tui.engine.states import State


def backoff_delay(base: float, attempts: int, most: float) -> float:
    """Seconds before a failed job runs again: `base ** attempts`, at most `most`."""
    return min(base ** attempts, most)


def out_of_retries(attempts: int, max_retries: int) -> bool:
    """The run just ended was the job's last allowed one (the first run plus
    `max_retries` retries)."""
    return attempts > max_retries


def not_retried(codes: str | None, exit_code: int | None, ended: str) -> str | None:
    """Why a failed run goes straight to the DLQ, if its job's retry rules say so."""
    if not codes:
        return None
    rules = codes.split(",")
    if ended in ("timeout", "oom") and ended in rules:
        return f"{ended} is in no_retry_on"
    if ended == "exit" and exit_code is not None and str(exit_code) in rules:
        return f"exit code {exit_code} is in no_retry_on"
    return None


@dataclass(frozen=True)
class Rescue:
    """Where a rescued run's job goes, the note that says why, and the fields
    the move sets besides the ones every rescue sets."""

    to: State
    note: str
    fields: dict[str, Any] = field(default_factory=dict)


def rescue(*, worker_id: str | None, worker_known_dead: bool, cancel_requested: bool,
           counted: bool, attempts: int, max_retries: int, now: float) -> Rescue:
    """What taking back a run whose worker is gone does to its job. Asked to
    cancel: cancelled. Stopped on purpose (`counted` False): pending, the
    attempt not counted. Out of retries: dead. Otherwise pending at once, not
    after a backoff, so the worst-case recovery is the lease plus one scan."""
    note = f"worker {worker_id} died" if worker_known_dead \
        else f"worker {worker_id} lost; lease expired"
    if cancel_requested:
        return Rescue(State.CANCELLED, f"cancelled ({note})", {"finished_at": now})
    if not counted:
        return Rescue(State.PENDING, f"{note} (stopped now; attempt not counted)",
                      {"run_at": now, "attempts": attempts - 1})
    if out_of_retries(attempts, max_retries):
        return Rescue(State.DEAD, note, {"finished_at": now})
    return Rescue(State.PENDING, note, {"run_at": now})
