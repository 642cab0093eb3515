"""What the ticks of a running command may ask of it, and its timeout's clock.

A worker's tick (workers/worker.py) reads what the job's owners want with its
lease renewal; `run_command` (workers/runner.py) hands the answer to `steer`:
an abort (cancelled, stopped, lost, snoozed) ends the process group, SIGTERM
then SIGKILL; a pause stops it (SIGSTOP) and a resume continues it (SIGCONT);
an extended timeout moves its deadline. The deadline's clock does not run
while the group is stopped.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

KILL_GRACE_S = 1.0  # SIGTERM first, then SIGKILL the whole group this much later


@dataclass(frozen=True)
class Abort:
    """Stop the running command: SIGTERM to its group now, SIGKILL after `grace`."""

    ended: str  # why: timeout, cancelled, stopped, lost, snoozed
    message: str
    grace: float = KILL_GRACE_S


@dataclass(frozen=True)
class Control:
    """What a tick asks of the running command, beside (or instead of) an abort:
    its process group stopped (True: SIGSTOP) or continued (False: SIGCONT;
    None: as it is), and its timeout as it now stands (None: unchanged)."""

    abort: Abort | None = None
    stopped: bool | None = None
    timeout: float | None = None


class Deadline:
    """A run's timeout clock: it does not run while the run's processes are
    stopped, and an extended timeout moves it."""

    def __init__(self, start: float, timeout: float | None) -> None:
        self.start = start
        self.first = self.limit = timeout or None
        self.paused = 0.0  # seconds stopped, not counting the stop under way
        self.stopped_at: float | None = None

    def due(self) -> float | None:
        """When the timeout passes (monotonic); None: no timeout, or stopped now."""
        if self.limit is None or self.stopped_at is not None:
            return None
        return self.start + self.limit + self.paused

    def stop(self, now: float) -> None:
        if self.stopped_at is None:
            self.stopped_at = now

    def cont(self, now: float) -> None:
        if self.stopped_at is not None:
            self.paused += now - self.stopped_at
            self.stopped_at = None

    def extend(self, limit: float) -> None:
        if self.limit is not None and limit > self.limit:
            self.limit = limit

    def timed_out(self) -> str:
        said = f"timed out after {self.limit:g} s"
        if self.first is not None and self.limit is not None and self.limit > self.first:
            said += f" ({self.first:g} s, extended by {self.limit - self.first:g} s)"
        if self.paused:
            said += f", not counting {self.paused:.1f} s paused"
        return said


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def steer(pid: int, control: Control, clock: Deadline, now: float) -> Abort | None:
    """Do what a tick asked (its abort is the caller's): stop or continue the
    process group, move the deadline."""
    if control.abort is not None:
        return control.abort
    if control.timeout is not None:
        clock.extend(control.timeout)
    if control.stopped and clock.stopped_at is None:
        kill_group(pid, signal.SIGSTOP)
        clock.stop(now)
    elif control.stopped is False and clock.stopped_at is not None:
        kill_group(pid, signal.SIGCONT)
        clock.cont(now)
    return None


def begin_stop(pid: int, abort: Abort, clock: Deadline, now: float) -> float:
    """SIGTERM the group now, and continue it if it was stopped (the TERM is
    delivered as it wakes, before it runs anything else); returns when to
    SIGKILL it."""
    kill_group(pid, signal.SIGTERM)
    if clock.stopped_at is not None:
        kill_group(pid, signal.SIGCONT)
        clock.cont(now)
    return time.monotonic() + max(0.0, abort.grace)
