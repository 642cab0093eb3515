"""What the log viewer reads: where a job's log is, its runs, and a bounded window of it.

`log_source` runs on the console's database thread (it reads the job and its
runs); `LogWindow` reads the log file itself through the engine's log reads (never the
whole file: a window of whole lines, at most MAX_BYTES, moved or grown a chunk
at a time), on a thread of its own. Every line is escaped for the screen by
`safe_text.output_line`, the escaping `queuectl show` uses.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from queuectl_tui.engine import Queue, find_in_log, log_size, read_log_range
from queuectl_tui.safe_text import output_line

CHUNK = 256 * 1024  # bytes read per step (a screen's worth many times over)
MAX_BYTES = 4 * 1024 * 1024  # the most of a log held at once, however big the file
RUN_SEARCH = 8 * 1024 * 1024  # how far from either side a running run's header is looked for


@dataclass
class Run:
    """One run's part of the log: from its header to the next run's (None: the end)."""

    number: int
    start: int
    end: int | None


@dataclass
class LogSource:
    job_id: str
    state: str
    log_dir: Path
    seq: int
    runs: list[Run] = field(default_factory=list)
    stored: str = ""  # the tails the database keeps: shown when this host has no log file

    def size(self) -> int:
        return log_size(self.log_dir, self.seq)

    def read(self, start: int, length: int) -> bytes:
        return read_log_range(self.log_dir, self.seq, start, length)

    def find(self, needle: bytes, start: int, end: int, *, backwards: bool = False,
             ignore_case: bool = False) -> int | None:
        return find_in_log(self.log_dir, self.seq, needle, start, end, backwards=backwards,
                           ignore_case=ignore_case)


def log_source(queue: Queue, job_id: str) -> LogSource:
    """The job's log and its runs (database thread). A running job's current run
    is not recorded yet: its header says where it starts, looked for near the end
    and just after the last recorded run (a bounded search, however big the log;
    not found, the last recorded run's span runs on to the end)."""
    job = queue.get(job_id)
    recorded = sorted((a["log_offset"], a["number"]) for a in queue.attempts(job_id)
                      if a["log_offset"] is not None)
    source = LogSource(job_id, job.state, queue.opened.log_dir, job.seq)
    if job.state == "processing":
        number = max((a["number"] for a in queue.attempts(job_id)), default=0) + 1
        after, size = (recorded[-1][0] + 1 if recorded else 0), source.size()
        header = f"--- attempt {number} started ".encode()
        found = source.find(header, max(after, size - RUN_SEARCH), size, backwards=True)
        if found is None:
            found = source.find(header, after, min(size, after + RUN_SEARCH))
        if found is not None:
            recorded.append((found, number))
    source.runs = [Run(number, start, recorded[i + 1][0] if i + 1 < len(recorded) else None)
                   for i, (start, number) in enumerate(recorded)]
    stored = [job.stdout_tail or "", job.stderr_tail or ""]
    source.stored = stored[0].rstrip("\n") + (f"\n--- stderr ---\n{stored[1].rstrip()}"
                                              if stored[1] else "")
    return source


class LogWindow:
    """Whole lines of one part of a log ([lo, hi), hi None: to the end), at most
    MAX_BYTES of them. An unfinished last line is shown and read again when
    more comes. A line longer than CHUNK is shown in CHUNK-sized pieces."""

    def __init__(self, read: Callable[[int, int], bytes], size: Callable[[], int],
                 lo: int = 0, hi: int | None = None) -> None:
        self._read, self._size = read, size
        self.lo, self.hi = lo, hi
        self.start = self.end = lo  # the bytes held: [start, end) plus `partial`
        self.lines: list[str] = []  # as shown: escaped, carriage returns applied
        self.offsets: list[int] = []  # where each line starts in the file
        self.partial = 0  # bytes of an unfinished last line after `end` (shown last)

    @property
    def limit(self) -> int:
        """Where this part of the log ends now."""
        size = self._size()
        return size if self.hi is None else min(self.hi, size)

    @property
    def at_start(self) -> bool:
        return self.start <= self.lo

    @property
    def at_end(self) -> bool:
        return self.end + self.partial >= self.limit

    def _parse(self, data: bytes, base: int, *, whole_first: bool, final: bool,
               at_limit: bool = True) -> tuple[list[str], list[int], int, int]:
        """Lines of `data` (read at `base`): (lines, offsets, first, used). A first
        line cut by the read is left out unless `whole_first`; an unfinished last
        one is kept (not counted as used unless `final` or CHUNK long) when the read
        reached the log's end, `at_limit`; else the read cut it: left for the next."""
        pos = 0
        if not whole_first:
            cut = data.find(b"\n")
            if 0 <= cut < len(data) - 1:
                pos = cut + 1
        first = base + pos
        lines, offsets = [], []
        used = pos
        while pos < len(data):
            nl = data.find(b"\n", pos)
            stop = len(data) if nl < 0 else nl
            piece_end = min(stop, pos + CHUNK)
            if nl < 0 and piece_end == len(data) and not at_limit and piece_end - pos < CHUNK:
                break  # cut by the read, not the log's unfinished line: read it next time
            lines.append(output_line(data[pos:piece_end].decode("utf-8", "replace")))
            offsets.append(base + pos)
            if nl < 0 and piece_end == len(data):
                if final or piece_end - pos >= CHUNK:
                    used = piece_end
                pos = piece_end
                break
            pos = piece_end + (1 if piece_end == nl else 0)
            used = pos
        return lines, offsets, first, used

    def load(self, at: int | None = None) -> None:
        """Hold the lines around byte `at` (None: the last lines; lo: the first)."""
        limit = self.limit
        if at is None:
            start = max(self.lo, limit - CHUNK)
        else:
            start = max(self.lo, min(at, limit) - CHUNK // 2)
        data = self._read(start, min(CHUNK, limit - start))
        at_limit = start + len(data) >= limit
        lines, offsets, first, used = self._parse(data, start, whole_first=start <= self.lo,
                                                  final=at_limit and self.hi is not None,
                                                  at_limit=at_limit)
        self.lines, self.offsets = lines, offsets
        self.start = first if lines else start + used
        self._set_end(start + used, start + len(data))

    def _set_end(self, end: int, read_to: int) -> None:
        """Complete lines end at `end`; the last line shown is unfinished when it
        starts there (it runs to `read_to`)."""
        self.end = end
        self.partial = read_to - end if self.offsets and self.offsets[-1] >= end else 0

    def more_after(self) -> int:
        """Read on past the end (a running job's new output, or the next chunk);
        returns how many lines were dropped from the start to stay bounded."""
        limit = self.limit
        if self.end + self.partial >= limit and not self.partial:
            return 0
        if self.partial:  # read the unfinished line again, whole
            self.lines.pop()
            self.offsets.pop()
        start = self.end
        data = self._read(start, min(CHUNK, limit - start))
        at_limit = start + len(data) >= limit
        lines, offsets, _, used = self._parse(data, start, whole_first=True,
                                              final=self.hi is not None and at_limit,
                                              at_limit=at_limit)
        self.lines += lines
        self.offsets += offsets
        self._set_end(start + used, start + len(data))
        dropped = max(0, min(len(self.offsets) - 1,
                             bisect.bisect_left(self.offsets, self.end - MAX_BYTES)))
        if dropped:
            del self.lines[:dropped]
            del self.offsets[:dropped]
            self.start = self.offsets[0]
        return dropped

    def more_before(self) -> int:
        """Read the chunk before the start; returns how many lines came before
        (the end gives up as many bytes as it takes to stay bounded)."""
        if self.at_start:
            return 0
        start = max(self.lo, self.start - CHUNK)
        data = self._read(start, self.start - start)
        lines, offsets, first, _ = self._parse(data, start, whole_first=start <= self.lo,
                                               final=True)
        if not lines:  # one line longer than a chunk: take the chunk as a piece of it
            lines = [output_line(data.decode("utf-8", "replace"))]
            offsets, first = [start], start
        self.lines[:0] = lines
        self.offsets[:0] = offsets
        self.start = first
        keep = max(len(lines), bisect.bisect_right(self.offsets, self.start + MAX_BYTES))
        if keep < len(self.offsets):
            cut = self.offsets[keep]
            del self.lines[keep:]
            del self.offsets[keep:]
            self._set_end(cut, cut)
        return len(lines)

    def find(self, needle: str, line: int, *, backwards: bool = False) -> int | None:
        """The next line (from `line`, not included) holding `needle` among the
        lines held; case folded when `needle` has no capital."""
        fold = needle == needle.lower()
        order = range(line - 1, -1, -1) if backwards else range(line + 1, len(self.lines))
        for i in order:
            text = self.lines[i].lower() if fold else self.lines[i]
            if needle in text:
                return i
        return None

    def line_at(self, offset: int) -> int:
        """The index of the line holding byte `offset`."""
        return max(0, bisect.bisect_right(self.offsets, offset) - 1)
