"""The detail pane's small truths: how each run ended said once and by signal
name, "(no output)" for a job that is over, a stranded job's note, and output
whose characters straddle a read's edge."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading

from queuectl_tui.clock import Ids
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.widgets.job_detail import FieldsScroll
from queuectl_tui.console.widgets.output_tail import OutputTail
from queuectl_tui.engine import logs, registry
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from tests.console.conftest import W3, make_app
from tests.console.test_log_viewer import add_job_with_log
from tests.console.test_safe_output import text_of

SIZE = (140, 60)


def _queue(db: str, clock) -> Queue:
    return Queue(open_database(db), clock=clock, ids=Ids(random.Random(9)))


async def test_a_run_ended_by_a_signal_is_said_once_and_by_name(queue_db, clock):
    q = _queue(queue_db, clock)
    q.enqueue(JobSpec(command="./slow.sh", id="slow", max_retries=0, priority=100))
    claimed = q.claim(W3, 30)
    clock.advance(2)
    q.finish(claimed, W3, exit_code=-15, error="timed out after 2s", ended="timeout")
    q.opened.close()
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        fields = text_of(app, app.screen.query_one(FieldsScroll))
        assert "exit code   SIGTERM" in fields, fields
        assert "exit code   -15" not in fields and "exit -15" not in fields
        assert "#1 timeout SIGTERM " in fields, fields


async def test_a_clean_run_says_exit_once(queue_db, clock):
    q = _queue(queue_db, clock)
    q.enqueue(JobSpec(command="./ok.sh", id="ok", max_retries=0, priority=100))
    claimed = q.claim(W3, 30)
    clock.advance(1)
    q.finish(claimed, W3, exit_code=0, error=None)
    q.opened.close()
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        fields = text_of(app, app.screen.query_one(FieldsScroll))
        assert "#1 exit 0 " in fields, fields
        assert "exit exit" not in fields


async def test_a_job_cancelled_before_it_ran_has_no_output_not_none_yet(queue_db, clock):
    q = _queue(queue_db, clock)
    q.enqueue(JobSpec(command="./never.sh", id="never"))
    q.cancel(["never"])
    q.opened.close()
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tail = text_of(app, app.screen.query_one(OutputTail))
        assert "(no output)" in tail and "(no output yet)" not in tail, tail


def _worker_process(worker_id: str) -> subprocess.Popen:
    """A process that passes for a worker (its command line names the id, as
    procs.worker_alive checks), so it can die the way a killed pool does."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", worker_id])


async def test_a_running_job_whose_worker_died_says_so_read_off_the_ui_thread(
        queue_db, clock, monkeypatch):
    q = _queue(queue_db, clock)
    proc = _worker_process("doomed-w")
    try:
        registry.register("doomed-w", host=q.host, pid=proc.pid, supervisor_pid=None,
                          now=clock.now())
        q.enqueue(JobSpec(command="./long.sh", id="long", priority=100))
        assert q.claim("doomed-w", 30).id == "long"
        q.opened.close()
        asked_on: list[threading.Thread] = []
        real = Queue.stranded

        def stranded(self, job_ids=None):
            asked_on.append(threading.current_thread())
            return real(self, job_ids)

        monkeypatch.setattr(Queue, "stranded", stranded)
        app = make_app(queue_db, clock, threaded=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            fields = app.screen.query_one(FieldsScroll)
            assert "long" in text_of(app, fields) and "its worker is gone" not in text_of(
                app, fields)  # alive: it is running
            proc.kill()
            proc.wait()
            await app.refresh_now()
            await settle(pilot)
            shown = " ".join(text_of(app, fields).split())
            assert "its worker is gone: " in shown, shown
            assert "rescue" in shown
        assert asked_on and threading.main_thread() not in asked_on
    finally:
        proc.kill()
        proc.wait()


async def test_a_character_split_between_two_reads_shows_whole(queue_db, clock):
    """A running job has written half of an "é" when the pane reads; the rest
    comes before the next read: the pane shows "café", never "\ufffd"."""
    claimed = add_job_with_log(queue_db, clock, "cafe", "first line\ncaf".encode() + b"\xc3",
                               running=True)
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tail = app.screen.query_one(OutputTail)
        assert tail.lines[0] == "first line"
        opened = open_database(queue_db)
        fd = logs.open_for_append(opened.log_dir, claimed.seq)
        os.write(fd, b"\xa9 au lait\n")  # the rest of the "\xc3\xa9"
        os.close(fd)
        opened.close()
        await app.refresh_now()
        await settle(pilot)
        assert tail.lines == ["first line", "café au lait"], tail.lines
        assert "\ufffd" not in text_of(app, tail)


def test_whole_characters_holds_a_half_character_and_drops_a_cut_one():
    from queuectl_tui.console.reads import whole_characters
    e = "é".encode()
    assert whole_characters(b"ab" + e[:1], 103, jumped=False) == (b"ab", 102)
    assert whole_characters(b"ab" + e, 104, jumped=False) == (b"ab" + e, 104)
    assert whole_characters(e[1:] + b"cd", 50, jumped=True) == (b"cd", 50)
    assert whole_characters(b"x" + "€".encode()[:2], 10, jumped=False) == (b"x", 8)
    assert whole_characters(b"x\xff", 10, jumped=False) == (b"x\xff", 10)  # not UTF-8: shown
