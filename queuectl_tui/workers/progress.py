"""Progress read from a running job's own output lines, for jobs that name a
pattern (`enqueue --progress-regex`, or their queue's `queue progress`).

The runner hands every chunk of output here (runner.OutputWatch). A line ends
at `\\n` or `\\r` (a tool that redraws one line ends each state with `\\r`); the
last line that matches wins. What a line said is written through the worker's
own connection at most every WRITE_EVERY_S, and the latest value once more
when the run ends, before its outcome: a job that prints a thousand lines a
second costs the database four writes a second, and one that prints nothing
costs none.
"""

from __future__ import annotations

import re
import time
from typing import Callable

from queuectl_tui.engine import Progress, progress_from_line

WRITE_EVERY_S = 0.25
MAX_PARTIAL = 4096  # bytes of an unfinished line kept (a pattern sees its first 512 chars)
LINE_END = re.compile(rb"[\r\n]")


class OutputProgress:
    """Reads progress from output (`feed`) and writes it (`write`) no more often
    than every WRITE_EVERY_S; `finish` writes the last value not yet written."""

    def __init__(self, pattern: re.Pattern, write: Callable[[Progress], bool],
                 every: float = WRITE_EVERY_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.pattern = pattern
        self.write = write
        self.every = every
        self.monotonic = monotonic
        self.due: float | None = None  # when the value not yet written may be
        self.latest: Progress | None = None
        self.written: Progress | None = None
        self.writes = 0
        self._last_write = float("-inf")
        self._partial: dict[int, bytes] = {1: b"", 2: b""}

    def feed(self, stream: int, chunk: bytes) -> None:
        lines = LINE_END.split(self._partial[stream] + chunk)
        self._partial[stream] = lines.pop()[:MAX_PARTIAL]
        if self._read(lines):
            self._send()

    def wake(self) -> None:
        self._send()

    def finish(self) -> None:
        """At the end of the run: the unfinished last lines count too, and the
        latest value is written whatever the time since the last write."""
        self._read([part for part in self._partial.values() if part])
        self._partial = {1: b"", 2: b""}
        if self.latest is not None and self.latest != self.written:
            self._put()

    def _read(self, lines: list[bytes]) -> bool:
        """Whether a line (the last that matches) gave a new value."""
        for line in reversed(lines):
            if not line:
                continue
            found = progress_from_line(self.pattern, line.decode("utf-8", "replace"))
            if found is not None:
                changed = found != self.latest
                self.latest = found
                return changed
        return False

    def _send(self) -> None:
        if self.latest is None or self.latest == self.written:
            self.due = None
            return
        now = self.monotonic()
        if now - self._last_write >= self.every:
            self._put()
        else:
            self.due = self._last_write + self.every

    def _put(self) -> None:
        self._last_write = self.monotonic()
        value = self.latest
        if value is not None and self.write(value):
            self.written = value
            self.writes += 1
            self.due = None
        else:  # locked, or the claim lost: try again a while later
            self.due = self._last_write + self.every
