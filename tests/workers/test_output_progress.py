"""Progress read from output lines (workers/progress.py), on its own with a
fake clock, and through the runner with a real command: lines end at `\\n` or
`\\r`, a line split across chunks is read whole, the last match wins, writes
come at most every WRITE_EVERY_S, and the last value is written at the end."""

from __future__ import annotations

import re
import time

from queuectl_tui.engine.progress import Progress
from queuectl_tui.workers.progress import MAX_PARTIAL, OutputProgress
from queuectl_tui.workers.runner import run_command


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def watcher(pattern: str = r"(\d+)%", ok: bool = True):
    clock, written = Clock(), []

    def write(value: Progress) -> bool:
        written.append((clock.now, value))
        return ok

    return OutputProgress(re.compile(pattern), write, every=0.25, monotonic=clock), clock, written


def test_lines_end_at_newline_or_carriage_return_and_the_last_match_wins():
    watch, clock, written = watcher()
    watch.feed(1, b"start\n 10%\r 2")
    assert written == [(100.0, Progress(10))]  # the first value goes out at once
    watch.feed(1, b"0%\r 30%\rnoise\n")  # "20%" was split across chunks
    assert watch.latest == Progress(30) and watch.due == 100.25  # too soon to write
    clock.now = 100.25
    watch.wake()
    assert written[-1] == (100.25, Progress(30)) and watch.due is None
    watch.wake()  # nothing new: nothing written
    assert len(written) == 2


def test_streams_keep_their_own_unfinished_lines():
    watch, clock, written = watcher(r"(\d+)/(\d+)")
    watch.feed(1, b"3/")
    watch.feed(2, b"x 1/2\n")
    watch.feed(1, b"10\n")
    assert watch.latest == Progress(3, 10)
    assert [value for _, value in written] == [Progress(1, 2)]


def test_the_end_writes_the_last_value_even_without_a_line_end():
    watch, clock, written = watcher()
    watch.feed(1, b"10%\n")
    watch.feed(2, b"55%")  # no line end yet
    watch.finish()
    assert [value for _, value in written] == [Progress(10), Progress(55)]
    watch.finish()
    assert len(written) == 2


def test_a_write_that_fails_is_tried_again_later():
    watch, clock, written = watcher(ok=False)
    watch.feed(1, b"10%\n")
    assert len(written) == 1 and watch.due == 100.25 and watch.written is None
    clock.now = 100.3
    watch.wake()
    assert len(written) == 2


def test_an_endless_line_is_kept_bounded():
    watch, _, written = watcher()
    for _ in range(100):
        watch.feed(1, b"x" * 65536)
    assert len(watch._partial[1]) <= MAX_PARTIAL
    watch.feed(1, b" 7%\n")  # its start was kept; the pattern sees its first 512 chars
    assert written == []


def test_the_runner_hands_every_chunk_over_and_wakes_it_on_time():
    class Recorder:
        due: float | None = None

        def __init__(self) -> None:
            self.chunks: list[tuple[int, bytes]] = []
            self.woken: list[float] = []

        def feed(self, stream: int, chunk: bytes) -> None:
            self.chunks.append((stream, chunk))
            if self.due is None and not self.woken:
                self.due = time.monotonic() + 0.2

        def wake(self) -> None:
            self.woken.append(time.monotonic())
            self.due = None

    seen = Recorder()
    started = time.monotonic()
    result = run_command("printf 'out\\n'; printf 'err\\n' >&2; sleep 1", timeout=10,
                         open_log=None, watch=seen)
    assert result.exit_code == 0
    assert b"".join(c for s, c in seen.chunks if s == 1) == b"out\n"
    assert b"".join(c for s, c in seen.chunks if s == 2) == b"err\n"
    assert len(seen.woken) == 1 and seen.woken[0] - started < 0.9  # not at the 1 s tick
