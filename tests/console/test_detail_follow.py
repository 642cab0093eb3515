"""The detail pane's small truths: how each run ended said once and by signal
name, "(no output)" for a job that is over, a stranded job's note, and output
whose characters straddle a read's edge."""

from __future__ import annotations

import random

from queuectl_tui.clock import Ids
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.widgets.job_detail import FieldsScroll
from queuectl_tui.console.widgets.output_tail import OutputTail
from queuectl_tui.engine.db import open_database
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from tests.console.conftest import W3, make_app
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
