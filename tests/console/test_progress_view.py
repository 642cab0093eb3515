"""Jobs that talk back in the console (issue 28): a running job's progress bar
with the time left in its row (in place of "started … ago"), and in the detail
pane its bar, done of total, ETA, message and, once stored, its result.

The database is built through the engine with the fixed clock: three running
jobs (done of total with a message, a percentage, nothing done yet), one
completed with a result, one that has reported nothing, one pending."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from queuectl_tui.clock import FakeClock, Ids
from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle, until
from queuectl_tui.engine import registry
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.progress import Progress, parse
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from tests.console.conftest import HOST, keys_then_settle, make_app
from tests.console.test_flows import shown_ids
from tests.console.test_safe_output import text_of

SIZE = (120, 36)
W1 = "fixture-w1"


def build_talking(path: Path, clock: FakeClock) -> None:
    q = Queue(open_database(str(path)), clock=clock, ids=Ids(random.Random(2828)))
    registry.register(W1, host=HOST, pid=4001, supervisor_pid=None, now=clock.now())
    q.enqueue(JobSpec(command="./export.sh --all", id="export"))
    done = q.claim(W1, 30)
    clock.advance(20)
    q.set_result("export", done.claim_token, '{"rows": 1204, "file": "export.csv"}')
    q.record_progress(done, Progress(100))
    q.finish(done, W1, exit_code=0, error=None)
    q.enqueue(JobSpec(command="echo later", id="later", delay=600))
    q.enqueue_many([JobSpec(command="./warm-cache.sh", id="warmup"),
                    JobSpec(command="sleep 60", id="quiet"),
                    JobSpec(command="./render.sh scene-4", id="render"),
                    JobSpec(command="rsync -a src/ dst/", id="fetch-data")])
    runs = {}
    for _ in range(4):
        run = q.claim(W1, 30)
        runs[run.id] = run
    clock.advance(30)
    q.report_progress("fetch-data", runs["fetch-data"].claim_token, parse("120/480"),
                      "copying files", set_message=True)  # a quarter in 30 s: 90 s left
    q.record_progress(runs["render"], Progress(70))
    q.record_progress(runs["warmup"], Progress(0))
    clock.advance(10)
    registry.beat(W1, state="busy", now=clock.now(), job_id="fetch-data",
                  job_started_at=clock.now() - 40)
    q.opened.close()


@pytest.fixture
def talking_db(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    build_talking(tmp_path / "queue.db", clock)
    return "queue.db"


def test_progress_bars_in_the_rows_and_the_detail_picture(snap_compare, talking_db, clock):
    assert snap_compare(make_app(talking_db, clock), terminal_size=SIZE,
                        run_before=keys_then_settle())


async def test_the_row_and_the_detail_say_how_far_and_how_long(talking_db, clock):
    app = make_app(talking_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert shown_ids(app)[0] == "fetch-data"
        table = " ".join(text_of(app, app.screen.query_one("#table")).split())
        assert "██████······ 25% 1m20s" not in table  # the row's bar is 5 cells
        assert "█▎··· 25% 1m20s" in table  # 80 s left of the 90 s said 10 s ago
        assert "███▌· 70%" in table and "····· 0%" in table
        assert "started 40s ago" in table  # `quiet` said nothing: as before
        detail = app.screen.query_one("#detail")
        await until(pilot, lambda: (detail.shown or {}).get("id") == "fetch-data")
        fields = " ".join(text_of(app, app.screen.query_one("#fields")).split())
        assert "progress ██████·················· 25%" in fields
        assert "120 of 480 · ETA 1m20s · 10s ago" in fields
        assert "message copying files" in fields
        await press(pilot, "slash", *"id:export", "enter")
        await until(pilot, lambda: (detail.shown or {}).get("id") == "export")
        fields = " ".join(text_of(app, app.screen.query_one("#fields")).split())
        assert 'result {"rows": 1204, "file": "export.csv"}' in fields
        assert "progress ████████████████████████ 100%" in fields
        assert "ETA" not in fields  # it has ended
