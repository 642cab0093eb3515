"""Issue 15: keys never wait for slow reads, fast view switches, and a moving list.

Each test drives the real app with its database thread(s). Waits poll with a
deadline; none sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.widgets.job_detail import JobDetail
from queuectl_tui.console.widgets.status_strip import StatusStrip
from queuectl_tui.engine import views
from tests.console.conftest import make_app

SIZE = (120, 36)


async def until(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def header(app) -> str:
    return str(app.screen.query_one(StatusStrip).query_one("#counts").render())


async def test_views_switched_faster_than_they_build_do_not_break_the_console(queue_db, clock):
    """Keys 2..8 pressed back to back, with refreshes in flight: a refresh must not
    read from or show in a view still being built (it crashed on History's table
    and Config's rows)."""
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for _ in range(3):
            for key in ("2", "3", "4", "5", "6", "7", "8", "1"):
                await pilot.press(key)
                app.request_refresh()
        await settle(pilot)
        assert app.current_mode == "jobs"
        assert app.screen.query_one("#table").row_count > 0


async def test_first_rows_and_keys_do_not_wait_for_the_full_count(queue_db, clock, monkeypatch):
    """The full count runs on the slow thread: until it comes the header says so,
    and rows and state tabs answer meanwhile."""
    release = threading.Event()
    real = views.StateCounts.full_count

    def slow_count(queue):
        assert release.wait(30), "the test never released the count"
        return real(queue)

    monkeypatch.setattr(views.StateCounts, "full_count", staticmethod(slow_count))
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#table")
        await until(lambda: table.row_count > 0, "the first rows")
        assert "counting jobs" in header(app)
        await pilot.press("right_square_bracket")  # Pending: read while the count waits
        await until(lambda: [r["state"] for r in table.buffer] == ["pending"] * 3
                    and not app.db.busy, "the Pending tab's rows")
        assert "counting jobs" in header(app)
        release.set()
        await until(lambda: "counting" not in header(app), "the counts")
        await settle(pilot)
        assert "3 pending" in header(app).replace("\u00a0", " ")


def finish_elsewhere(db: str, job_id: str, now: float) -> None:
    """Another process (a worker would) takes the due jobs in claim order and
    completes them, up to `job_id`, at the test clock's time."""
    code = ("import sys\n"
            "from queuectl_tui.clock import FakeClock\n"
            "from queuectl_tui.engine.storage.opening import open_database\n"
            "from queuectl_tui.engine.queue import Queue\n"
            "q = Queue(open_database(sys.argv[1]), clock=FakeClock(float(sys.argv[3])))\n"
            "while True:\n"
            "    c = q.claim('elsewhere', 30)\n"
            "    if c is None:\n"
            "        raise SystemExit('nothing to claim')\n"
            "    q.finish(c, 'elsewhere', exit_code=0, error=None)\n"
            "    if c.id == sys.argv[2]:\n"
            "        break\n")
    done = subprocess.run([sys.executable, "-c", code, db, job_id, repr(now)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


async def test_a_row_leaving_under_the_cursor_costs_one_read_not_a_loop(queue_db, clock):
    """The detail of the row the cursor lands on comes with the rows: when the
    selected job leaves the list (a worker took it), one refresh shows the next
    row and its detail, and asks for no other."""
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "right_square_bracket")  # Pending
        screen = app.screen
        table = screen.query_one("#table")
        detail = screen.query_one(JobDetail)
        assert [r["id"] for r in table.buffer] == ["media-sync", "cleanup", "digest"]
        await press(pilot, "j", "j")  # on digest, the next to run
        assert detail.job_id == "digest"
        finish_elsewhere(queue_db, "digest", clock.now())
        before = app.refresh_count
        app.request_refresh()
        await settle(pilot)
        assert app.refresh_count == before + 1, "a second read chased the detail"
        assert [r["id"] for r in table.buffer] == ["media-sync", "cleanup"]
        assert table.current is not None and table.current["id"] == "cleanup"
        assert detail.job_id == table.current["id"]
        assert detail.shown is not None and detail.shown["id"] == table.current["id"]


async def test_a_command_with_brackets_shows_whole_in_the_list(queue_db, clock):
    """Table cells are plain text: DataTable read a str cell as Rich markup, so
    `grep [a-z] notes.txt` showed as `grep  notes.txt`."""
    subprocess.run([sys.executable, "-m", "queuectl_tui", "--db", queue_db, "enqueue",
                    "grep [a-z] notes.txt", "--id", "brackets"], check=True, capture_output=True)
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#table")
        lines = [table.render_line(y).text for y in range(table.size.height)]
        assert any("brackets" in line and "grep [a-z] notes.txt" in line for line in lines), lines


async def test_view_keys_still_work_after_a_dialog_closes_over_an_empty_list(queue_db, clock):
    """Found in tmux: with the list empty (Blocked tab), closing the help gave the
    focus to the hidden filter box, and 3, 6, n... were typed into it unseen."""
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "right_square_bracket", "right_square_bracket")  # Blocked: none
        await press(pilot, "question_mark")
        await press(pilot, "escape")
        await press(pilot, "3")
        assert app.current_mode == "dlq", app.focused
        await press(pilot, "1", "6")
        assert app.current_mode == "queues", app.focused


async def test_the_footer_is_rebuilt_only_when_its_keys_change(queue_db, clock, monkeypatch):
    """Textual's footer rebuilt its keys (and laid the screen out again, 30-40 ms)
    on every focus change: a state tab that empties the table and the next that
    fills it, every view switch. Ours rebuilds when the keys shown change."""
    from queuectl_tui.console.widgets.footer import Footer
    rebuilt: list[str] = []
    real = Footer.recompose

    async def counted(self):
        rebuilt.append(self.screen.__class__.__name__)
        return await real(self)

    monkeypatch.setattr(Footer, "recompose", counted)
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key in ("3", "1"):  # each footer used here built once
            await press(pilot, key)
        rebuilt.clear()
        for _ in range(9):  # round every state tab, empty ones included, and back
            await press(pilot, "right_square_bracket")
        for key in ("3", "1", "3", "1"):
            await press(pilot, key)
        assert rebuilt == []
        app.bind("x", "bell", description="Ring")  # now the keys do change
        app.screen.refresh_bindings()
        await until(lambda: rebuilt, "the footer to show the new key")
        await settle(pilot)
        assert "Ring" in str([k.description for k in app.screen.query("FooterKey")])
