"""The full-screen log viewer (`l`): opened from Jobs, the DLQ and the detail pane;
follows, wraps, searches, moves through a huge log in bounded memory, shows one
run, escapes what the job printed, and hands the log to $PAGER."""

from __future__ import annotations

import os
import random
import sys

from queuectl_tui.clock import Ids
from queuectl_tui.console import log_reader
from queuectl_tui.console.log_reader import LogWindow
from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle, until
from queuectl_tui.console.screens.log_viewer import (LogViewerScreen, escaped_chunks,
                                                     pipe_to_pager)
from queuectl_tui.engine import logs
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from tests.console.conftest import W3, make_app
from tests.console.test_safe_output import SHOWN, add_hostile_job, controls_in, screen_rows

SIZE = (120, 36)
BIG_LINES = 500_000  # about 20 MB of log: five times what the viewer may hold


def add_job_with_log(db: str, clock, job_id: str, data: bytes, *, running: bool = False,
                     priority: int = 100):
    """A job that printed `data`; `running`: still running (its claim is returned)."""
    q = Queue(open_database(db), clock=clock, ids=Ids(random.Random(8)))
    q.enqueue(JobSpec(command=f"./{job_id}.sh", id=job_id, priority=priority, max_retries=0))
    claimed = q.claim(W3, 30)
    assert claimed is not None and claimed.id == job_id
    fd = logs.open_for_append(q.opened.log_dir, claimed.seq)
    os.write(fd, data)
    os.close(fd)
    if not running:
        clock.advance(1)
        q.finish(claimed, W3, exit_code=0, error=None)
    q.opened.close()
    return claimed


def big_log() -> bytes:
    lines = [f"line {i:07d} of the big job" for i in range(BIG_LINES)]
    for at in (100, 250_000, 499_000):
        lines[at] += " MARKER"
    return ("\n".join(lines) + "\n").encode()


def viewer(app) -> LogViewerScreen:
    assert isinstance(app.screen, LogViewerScreen), app.screen
    return app.screen


def shown(app) -> list[str]:
    """The log's rows on screen, from the top."""
    body = viewer(app).view
    rows = screen_rows(app)[body.region.y:body.region.bottom]
    return [row.rstrip() for row in rows]


async def test_l_opens_the_log_from_jobs_the_detail_and_the_dlq(queue_db, clock):
    add_hostile_job(queue_db, clock)
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "l")  # Jobs: the selected job (evil, the first row)
        assert viewer(app).job_id == "evil"
        assert controls_in(screen_rows(app)) == []
        assert any(SHOWN in row for row in shown(app))
        assert "loading 100%" in shown(app)  # a \r progress bar at its latest state
        footer = screen_rows(app)[-1]
        for key in ("Back", "Follow", "Wrap", "Search", "Runs", "PAGER"):
            assert key in footer, footer
        await press(pilot, "escape")
        assert not isinstance(app.screen, LogViewerScreen)

        await press(pilot, "tab", "l")  # from the detail pane (focused)
        assert viewer(app).job_id == "evil"
        await press(pilot, "q")

        await press(pilot, "3", "l")  # the DLQ's first dead job
        assert viewer(app).job_id == "evil"
        assert any(SHOWN in row for row in shown(app))


async def test_a_huge_log_is_read_a_window_at_a_time(queue_db, clock, monkeypatch):
    add_job_with_log(queue_db, clock, "big", big_log())

    asked: list[int] = []
    read_range = log_reader.read_log_range

    def counted(log_dir, seq, start, length):
        asked.append(length)
        return read_range(log_dir, seq, start, length)

    monkeypatch.setattr(log_reader, "read_log_range", counted)
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "l")
        screen = viewer(app)
        window = screen.window

        def bounded() -> bool:
            return window.end - window.start <= log_reader.MAX_BYTES + 64

        last = f"line {BIG_LINES - 1:07d} of the big job"
        await until(pilot, lambda: shown(app)[-1] == last)  # placed once laid out
        assert bounded() and not window.at_start
        await press(pilot, "g")
        await until(pilot, lambda: shown(app)[0] == "line 0000000 of the big job")
        assert bounded()
        await press(pilot, "G")
        await until(pilot, lambda: shown(app)[-1] == last)
        assert bounded()

        await press(pilot, "slash", *"MARKER", "enter")  # nothing after the last line
        assert "not found after this line" in screen_rows(app)[-2]
        for expected in (499_000, 250_000, 100):  # N: back through the file
            await press(pilot, "N")
            marked = window.lines[screen.view.marked]
            assert marked == f"line {expected:07d} of the big job MARKER", marked
            assert any(row.endswith(f"{expected:07d} of the big job MARKER")
                       for row in shown(app))
            assert bounded()
        await press(pilot, "N")
        assert "not found before this line" in screen_rows(app)[-2]
        await press(pilot, "n")
        assert window.lines[screen.view.marked].startswith("line 0250000")

        await press(pilot, "g")
        for _ in range(3):  # k at the top of what is held reads the chunk before
            await press(pilot, "k")
        assert bounded()
        assert asked and max(asked) <= log_reader.CHUNK  # never the whole file at once


async def test_follow_shows_new_output_and_off_stays_put(queue_db, clock):
    steps = "".join(f"step {i}\n" for i in range(1, 101)).encode()
    add_job_with_log(queue_db, clock, "printer", steps, running=True)
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "l")
        screen = viewer(app)
        assert screen.follow  # a running job's log opens following
        assert shown(app)[-1] == "step 100"
        path = logs.log_path(app.db.queue.opened.log_dir, screen.source.seq)
        with open(path, "ab") as fh:
            fh.write(b"step 101\nstep 102 unfinished")
        screen.poll()
        await settle(pilot)
        assert [r for r in shown(app) if r][-2:] == ["step 101", "step 102 unfinished"]
        with open(path, "ab") as fh:
            fh.write(b" and done\n")
        screen.poll()
        await settle(pilot)
        assert [r for r in shown(app) if r][-1] == "step 102 unfinished and done"

        await press(pilot, "f", "g")  # follow off, to the top
        assert not screen.follow and shown(app)[0] == "step 1"
        with open(path, "ab") as fh:
            fh.write(b"step 103\n")
        screen.poll()
        await settle(pilot)
        assert shown(app)[0] == "step 1"  # not pulled to the end
        await press(pilot, "f")
        assert screen.follow and [r for r in shown(app) if r][-1] == "step 103"


async def test_wrap_folds_long_lines_and_off_scrolls_sideways(queue_db, clock):
    long_line = "".join(f"[{i:03d}]" for i in range(60))  # 300 columns
    add_job_with_log(queue_db, clock, "wide", f"short\n{long_line}\n".encode())
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "l")
        assert "[059]" not in "".join(shown(app))  # off: cut at the screen's edge
        await press(pilot, "w")
        assert "".join(r for r in shown(app)[1:4]) == long_line  # on: folded, whole
        await press(pilot, "w", "down", *["right"] * 30)
        assert "[059]" in "".join(shown(app))


async def test_r_shows_one_run_at_a_time(queue_db, clock):
    q = Queue(open_database(queue_db), clock=clock, ids=Ids(random.Random(8)))
    q.enqueue(JobSpec(command="./twice.sh", id="twice", priority=100, max_retries=1))
    for number, text in ((1, "first try failed"), (2, "second try worked")):
        claimed = q.claim(W3, 30)
        assert claimed is not None and claimed.id == "twice"
        fd = logs.open_for_append(q.opened.log_dir, claimed.seq)
        offset = os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, f"--- attempt {number} started ---\n{text}\n".encode())
        os.close(fd)
        q.finish_and_claim(claimed, W3, exit_code=1 if number == 1 else 0,
                           error="exit code 1" if number == 1 else None, log_offset=offset)
        clock.advance(600)  # past the retry's backoff
    q.opened.close()
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "l")
        assert [r for r in shown(app) if r] == ["--- attempt 1 started ---", "first try failed",
                                                "--- attempt 2 started ---",
                                                "second try worked"]
        await press(pilot, "r")
        assert [r for r in shown(app) if r] == ["--- attempt 1 started ---", "first try failed"]
        assert "run 1 (1 of 2)" in screen_rows(app)[0]
        await press(pilot, "r")
        assert [r for r in shown(app) if r] == ["--- attempt 2 started ---",
                                                "second try worked"]
        await press(pilot, "r")
        assert "whole log" in screen_rows(app)[0]


def test_pager_gets_the_log_escaped_and_streamed(tmp_path):
    data = b"ok\n\x1b[2Jcleared\n10%\r100%\nlast without newline"
    out = tmp_path / "paged"
    command = f"{sys.executable} -c \"import sys; open({str(out)!r}, 'wb')" \
              ".write(sys.stdin.buffer.read())\""
    chunks = escaped_chunks(lambda s, n: data[s:s + n], 0, len(data))
    assert pipe_to_pager(command, chunks) is None
    assert out.read_text() == "ok\n" + r"\x1b[2Jcleared" + "\n100%\nlast without newline\n"
    assert "cannot run" in pipe_to_pager("/nonexistent/pager", iter([b"x"]))


def test_pager_that_quits_early_ends_the_stream():
    endless = (b"line\n" * 1000 for _ in range(100_000))  # 500 MB if it were all read
    assert pipe_to_pager("head -c 10", endless) is None


def test_find_in_a_log_matches_a_plain_search_across_chunks(tmp_path, monkeypatch):
    """engine.logs.find reads a chunk at a time: a match astride two chunks, the
    first and the last, forwards and backwards, and case folded, as bytes.find."""
    monkeypatch.setattr(logs, "FIND_CHUNK", 7)
    rng = random.Random(3)
    data = bytes(rng.choice(b"abAB\n") for _ in range(400))
    fd = logs.open_for_append(tmp_path, 1)
    os.write(fd, data)
    os.close(fd)
    for needle in (b"ab", b"aBa", b"abba", b"\nb", b"zz"):
        for start, end in ((0, 400), (13, 250), (100, 101), (0, 7)):
            window = data[start:end]
            found = window.find(needle)
            assert logs.find(tmp_path, 1, needle, start, end) == (
                None if found < 0 else start + found)
            found = window.rfind(needle)
            assert logs.find(tmp_path, 1, needle, start, end, backwards=True) == (
                None if found < 0 else start + found)
            found = window.lower().find(needle.lower())
            assert logs.find(tmp_path, 1, needle, start, end, ignore_case=True) == (
                None if found < 0 else start + found)


def test_log_source_finds_recorded_runs_and_the_running_one(queue, clock):
    """On both backends: a finished run is recorded with where its output starts;
    a running one is found by its header, the last in the log."""
    queue.enqueue(JobSpec(command="./again.sh", id="again", max_retries=2))
    log_dir = queue.opened.log_dir
    starts = []
    for number in (1, 2):
        claimed = queue.claim(W3, 30)
        assert claimed is not None and claimed.id == "again"
        fd = logs.open_for_append(log_dir, claimed.seq)
        starts.append(os.lseek(fd, 0, os.SEEK_END))
        os.write(fd, f"--- attempt {number} started 2027 on worker w ---\nout {number}\n".encode())
        os.close(fd)
        if number == 1:
            queue.finish_and_claim(claimed, W3, exit_code=1, error="exit code 1",
                                   log_offset=starts[0])
            clock.advance(600)
    source = log_reader.log_source(queue, "again")
    assert source.state == "processing"
    assert [(r.number, r.start, r.end) for r in source.runs] == [
        (1, starts[0], starts[1]), (2, starts[1], None)]
    window = LogWindow(source.read, source.size, source.runs[1].start)
    window.load(window.lo)
    assert window.lines == ["--- attempt 2 started 2027 on worker w ---", "out 2"]


async def test_the_title_follows_the_job_to_its_end(queue_db, clock):
    claimed = add_job_with_log(queue_db, clock, "ending", b"working\n", running=True)
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "l")
        screen = viewer(app)
        assert "ending · processing" in screen_rows(app)[0]
        q = app.db.queue  # the console's own (one database object per process)
        with open(logs.log_path(q.opened.log_dir, claimed.seq), "ab") as fh:
            fh.write(b"done\n")
        q.finish(claimed, W3, exit_code=0, error=None)
        screen.poll()
        await settle(pilot)
        assert "ending · completed" in screen_rows(app)[0]
        assert [r for r in shown(app) if r][-1] == "done"


async def test_a_view_number_closes_the_log_first(queue_db, clock):
    """3 in the log viewer shows the DLQ with the log closed: 1 then shows Jobs,
    not the log still open over it; the footer says 1-8."""
    add_job_with_log(queue_db, clock, "printer", b"hello\n")
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "l")
        assert viewer(app).job_id == "printer"
        footer = screen_rows(app)[-1]
        await press(pilot, "3")
        assert app.current_mode == "dlq"
        assert not any(isinstance(s, LogViewerScreen) for s in app.screen_stack)
        await press(pilot, "1")
        assert app.current_mode == "jobs"
        assert not isinstance(app.screen, LogViewerScreen), app.screen
        await press(pilot, "l", "1")  # the view it came from: just closes the log
        assert app.current_mode == "jobs" and not isinstance(app.screen, LogViewerScreen)
        assert "1-8" in footer
