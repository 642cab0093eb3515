"""Keyboard flows through the real database thread, checked in the database."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time

import pytest

from queuectl_tui.clock import Ids
from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.widgets.window_table import WindowTable
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.models import Job, Worker
from queuectl_tui.engine.storage.opening import open_database
from tests.console.conftest import W1, W2, make_app

SIZE = (120, 36)


def enqueue_elsewhere(db: str, command: str, job_id: str) -> None:
    """Another process adds a job (a second database object here would share the
    engine's global proxy with the console's, which one process must not do)."""
    subprocess.run([sys.executable, "-m", "queuectl_tui", "--db", db, "enqueue", command,
                    "--id", job_id], check=True, capture_output=True)


def numbered_jobs(db: str, clock, count: int, id_format: str) -> None:
    """A database of `count` pending jobs, made before the console opens it."""
    q = Queue(open_database(db), clock=clock, ids=Ids(random.Random(3)))
    q.enqueue_many([JobSpec(command=f"echo {i}", id=id_format.format(i)) for i in range(count)])
    q.opened.close()


def state_of(job_id: str) -> str | None:
    row = Job.select(Job.state).where(Job.id == job_id).first()
    return row.state if row else None


def shown_ids(app) -> list[str]:
    table = app.screen.query_one("#table", WindowTable)
    return [r.get("id") or r.get("job_id") for r in table.buffer]


@pytest.mark.parametrize("threaded", [True, False])
async def test_dlq_retry_one_leaves_the_view_and_is_pending(queue_db, clock, threaded):
    app = make_app(queue_db, clock, threaded=threaded)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3")
        assert shown_ids(app) == ["backup-db", "hook-2", "hook-1"]
        await press(pilot, "r")
        assert shown_ids(app) == ["hook-2", "hook-1"]
        assert state_of("backup-db") == "pending"
        assert state_of("hook-2") == "dead"
        await press(pilot, "1")
        assert app.screen.query_one("#table", WindowTable).buffer[0]["id"] == "media-sync"
        assert "backup-db" in shown_ids(app)


async def test_dlq_retry_marked_after_confirmation(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "space", "space", "R")
        await press(pilot, "y")
        assert state_of("backup-db") == "pending"
        assert state_of("hook-2") == "pending"
        assert state_of("hook-1") == "dead"
        assert shown_ids(app) == ["hook-1"]


async def test_bulk_retry_defaults_to_no(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "R", "enter")  # enter presses the focused button: No
        assert [state_of(j) for j in ("backup-db", "hook-2", "hook-1")] == ["dead"] * 3
        await press(pilot, "R", "y")
        assert [state_of(j) for j in ("backup-db", "hook-2", "hook-1")] == ["pending"] * 3
        assert shown_ids(app) == []


async def test_dlq_bulk_retry_applies_to_what_the_filter_matches(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "slash", *"cmd:curl", "enter")
        assert shown_ids(app) == ["hook-2", "hook-1"]
        await press(pilot, "R", "y")
        assert state_of("hook-1") == state_of("hook-2") == "pending"
        assert state_of("backup-db") == "dead"


async def test_dlq_delete_asks_and_deletes(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "d", "n")
        assert state_of("backup-db") == "dead"
        await press(pilot, "d", "y")
        assert state_of("backup-db") is None
        assert shown_ids(app) == ["hook-2", "hook-1"]


async def test_enqueue_from_the_dialog(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "n", *"echo from-console", "tab", *"console-1", "tab", *"5",
                    "tab", *"7", "tab", *"10s", "tab", *"1m", "enter")
        job = Job.get(Job.id == "console-1")
        assert (job.command, job.state, job.max_retries, job.priority) == \
            ("echo from-console", "pending", 5, 7)
        assert job.run_at == pytest.approx(job.created_at + 10)
        assert job.timeout == 60
        assert shown_ids(app)[0] == "console-1"


async def test_enqueue_refuses_bad_input_and_saves_nothing(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = Job.select().count()
        await press(pilot, "n", "enter")
        assert "command must not be empty" in str(app.screen.query_one("#error").render())
        await press(pilot, *"true", "tab", *"report-01", "enter")  # an id that is taken
        assert "already exists" in str(app.screen.query_one("#error").render())
        assert Job.select().count() == before
        await press(pilot, "escape")
        assert Job.select().count() == before


async def test_filter_by_field_and_clear(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"state:dead cmd:hook", "enter")
        assert shown_ids(app) == ["hook-2", "hook-1"]
        await press(pilot, "slash", "ctrl+u", *"report-0", "enter")
        assert len(shown_ids(app)) == 8
        await press(pilot, "escape")
        assert len(shown_ids(app)) == 16


async def test_bad_filter_says_why_and_keeps_the_list(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"state:sleeping", "enter")
        assert "unknown state 'sleeping'" in str(app.screen.query_one("#filter-error").render())
        assert len(shown_ids(app)) == 16


async def test_stop_one_worker(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2", "j", "x")  # the second pane: fixture-w2
        flags = {w.id: w.stop_requested for w in Worker.select()}
        assert flags[W2] and not flags[W1]
        await press(pilot, "X", "y")
        assert Worker.get(Worker.id == W1).stop_requested


async def test_config_edit_validates_then_saves(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "5", "enter", "ctrl+u", *"many", "enter")
        assert "must be a whole number" in str(app.screen.query_one("#error").render())
        await press(pilot, "ctrl+u", *"7", "enter")
        assert app.db.queue.config_get("max-retries") == 7


async def test_live_change_keeps_the_cursor_on_its_job(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j", "j")
        table = app.screen.query_one("#table", WindowTable)
        assert table.current["id"] == "long-build"
        row_on_screen = table.cursor - table.top
        enqueue_elsewhere(queue_db, "echo from another terminal", "late")
        app.request_refresh()
        await settle(pilot)
        assert shown_ids(app)[0] == "late"
        assert table.current["id"] == "long-build"
        assert (table.top, table.cursor) == (0, row_on_screen + 1)


async def test_only_the_visible_rows_are_in_the_table(tmp_path, clock, monkeypatch):
    monkeypatch.chdir(tmp_path)
    numbered_jobs("big.db", clock, 3000, "job-{:05d}")
    app = make_app("big.db", clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#table", WindowTable)
        assert table.row_count <= table.page
        assert len(table.buffer) < 200
        assert table.current["id"] == "job-02999"
        await press(pilot, "end")
        assert table.current["id"] == "job-00000"
        for _ in range(40):
            await pilot.press("k")
        await settle(pilot)
        assert table.current["id"] == "job-00040"
        assert table.row_count <= table.page
        await press(pilot, "home")
        assert table.current["id"] == "job-02999"
        await press(pilot, "pagedown", "pagedown")
        assert table.current["id"] == f"job-{2999 - 2 * table.page:05d}"


async def test_missing_database_then_enqueue_creates_it(tmp_path, clock, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app("later.db", clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "no database at later.db" in str(app.screen.query_one("#problem").render())
        await press(pilot, "n", *"echo first", "enter")
        app.request_refresh()
        await settle(pilot)
        assert not app.screen.query_one("#problem").display
        assert shown_ids(app) == [Job.get().id]


async def test_unreadable_file_is_a_message_not_a_traceback(tmp_path, clock, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite at all" * 100)
    app = make_app("junk.db", clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "not a queuectl database" in str(app.screen.query_one("#problem").render())


async def test_locked_database_is_a_message_and_the_data_stays(queue_db, clock, monkeypatch):
    import sqlite3

    from queuectl_tui.console import reads

    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert len(shown_ids(app)) == 16

        def locked(*args):
            raise sqlite3.OperationalError("database is locked")

        with monkeypatch.context() as patch:  # (undo() would undo the fixture's chdir too)
            patch.setattr(reads, "summary", locked)
            app.request_refresh()
            await settle(pilot)
            strip = str(app.screen.query_one("#counts").render())
            assert "stale" in strip  # the header marks the counts; the notice says why
            assert "is locked by another" in str(app.screen.query_one("#notice").render())
            assert len(shown_ids(app)) == 16  # what was read before stays on screen
        app.request_refresh()
        await settle(pilot)
        assert "stale" not in str(app.screen.query_one("#counts").render())
        assert not app.screen.query_one("#notice").display


async def test_cursor_keeps_its_place_on_screen_when_scrolled(tmp_path, clock, monkeypatch):
    monkeypatch.chdir(tmp_path)
    numbered_jobs("many.db", clock, 200, "job-{:04d}")
    app = make_app("many.db", clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#table", WindowTable)
        await press(pilot, "pagedown", "j", "j")
        before = (table.current["id"], table.cursor - table.top)
        assert table.top > 0
        enqueue_elsewhere("many.db", "echo new", "newest")
        app.request_refresh()
        await settle(pilot)
        assert (table.current["id"], table.cursor - table.top) == before


async def choose_in_palette(pilot, text: str) -> None:
    """Type into the command palette, wait (with a deadline) for its hits, take the first."""
    import time

    from textual.command import CommandList

    await press(pilot, "ctrl+p", *text)
    deadline = time.monotonic() + 10
    hits = pilot.app.screen.query_one(CommandList)
    while hits.option_count == 0 or text not in str(hits.get_option_at_index(0).prompt).lower():
        assert time.monotonic() < deadline, "the palette found nothing"
        await pilot.pause()
    await press(pilot, "enter")


async def test_command_palette_offers_the_same_actions(queue_db, clock):
    from queuectl_tui.console.screens.confirm import ConfirmDialog

    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await choose_in_palette(pilot, "retry marked")
        assert app.current_mode == "dlq"
        assert isinstance(app.screen, ConfirmDialog)
        await press(pilot, "y")
        assert [state_of(j) for j in ("backup-db", "hook-2", "hook-1")] == ["pending"] * 3
        await choose_in_palette(pilot, "show dead jobs")
        assert app.current_mode == "jobs"
        assert app.screen.tab_states == ("dead",)


async def test_narrow_terminal_drops_minor_columns(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#table", WindowTable)
        assert [str(c.label) for c in table.columns.values()] == \
            [" ", "ID", "STATE", "PRI", "WHEN", "COMMAND"]
        assert not app.screen.query_one("#detail").display  # 24 rows: the list first
        await press(pilot, "enter")
        assert app.screen.query_one("#detail").display


async def test_a_refresh_read_before_the_retry_does_not_bring_the_row_back(queue_db, clock,
                                                                           monkeypatch):
    import threading

    from queuectl_tui.console import reads

    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3")
        table = app.screen.query_one("#table", WindowTable)
        shown: list[list[str]] = []
        real_show = table.show_window

        def recording_show(window):
            real_show(window)
            shown.append([r["id"] for r in table.buffer])

        monkeypatch.setattr(table, "show_window", recording_show)
        gate = threading.Event()
        real_refresh = reads.refresh

        def slow_refresh(*args):
            snap = real_refresh(*args)  # reads the DLQ as it is now: backup-db is dead
            gate.wait(10)
            return snap

        monkeypatch.setattr(reads, "refresh", slow_refresh)
        app.request_refresh()
        await pilot.pause()
        await pilot.press("r")  # the retry queues behind the slow refresh
        assert "backup-db" not in shown_ids(app)
        monkeypatch.setattr(reads, "refresh", real_refresh)
        gate.set()
        await settle(pilot)
        assert state_of("backup-db") == "pending"
        assert shown and all("backup-db" not in ids for ids in shown)


async def test_output_of_a_running_job_is_followed(queue_db, clock):
    from queuectl_tui.console.widgets.output_tail import OutputTail
    from queuectl_tui.engine import logs

    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j", "j")  # long-build, running, 12 lines of output so far
        log = app.screen.query_one("#output", OutputTail)

        def lines() -> list[str]:
            return [line for line in log.lines if line]

        assert lines()[-1] == "step 12"
        job = Job.get(Job.id == "long-build")
        fd = logs.open_for_append(app.db.queue.opened.log_dir, job.seq)
        os.write(fd, b"step 13\nstep 14\n")
        os.close(fd)
        app.request_refresh()
        await settle(pilot)
        assert lines()[-3:] == ["step 12", "step 13", "step 14"]
        assert lines().count("step 12") == 1  # appended, not written again


async def test_mouse_clicks_switch_views_and_pick_rows(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#table", WindowTable)
        await pilot.click(WindowTable, offset=(20, 4))  # the header is row 0: 4th job
        await settle(pilot)
        assert table.current["id"] == "long-build"
        assert app.screen.query_one("#detail").job_id == "long-build"
        await pilot.click("#dlq")
        await settle(pilot)
        assert app.current_mode == "dlq"
        assert shown_ids(app) == ["backup-db", "hook-2", "hook-1"]


async def test_jobs_bulk_delete_applies_to_the_filter_and_spares_running_jobs(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"cmd:a cmd:o", "enter")  # every fixture command
        await press(pilot, "D", "y")
        assert [j.id for j in Job.select()] == ["long-build"]  # running: not deleted
        assert shown_ids(app) == ["long-build"]


async def test_jobs_retry_marked_dead_jobs(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "]", "]", "]", "]", "]", "]")  # the Dead tab
        await settle(pilot)
        assert shown_ids(app) == ["backup-db", "hook-2", "hook-1"]
        await press(pilot, "j", "j", "space", "R", "y")  # mark hook-1 only
        assert [state_of(j) for j in ("backup-db", "hook-2", "hook-1")] == \
            ["dead", "dead", "pending"]


async def test_a_slow_view_is_reread_every_fifth_tick_but_keys_read_at_once(queue_db, clock,
                                                                            monkeypatch):
    from queuectl_tui.console import app as app_module
    from queuectl_tui.console import reads as console_reads

    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        reads: list[bool] = []
        real_refresh = console_reads.refresh

        def counting(queue, counter, load):
            reads.append(load is not None)
            snap = real_refresh(queue, counter, load)
            if load is not None:
                snap.view_seconds = 1.0  # as if a rare text filter scanned a big table
            return snap

        monkeypatch.setattr(console_reads, "refresh", counting)
        for _ in range(app_module.VIEW_EVERY_WHEN_SLOW * 2 + 1):
            app._tick()
            await settle(pilot)
        # A busy machine may merge ticks, so count the behaviour, not the ticks:
        # the slow view is still read now and then, but most ticks skip it.
        loads = reads.count(True)
        assert len(reads) >= 6 and 1 <= loads <= 3 and loads < len(reads) / 2, reads
        await press(pilot, "right_square_bracket")  # a key still reads the view at once
        assert reads[-1] is True


async def test_enter_on_a_filtered_list_opens_the_detail_and_keeps_the_filter(queue_db, clock):
    """Issue 9: Enter replaced the filter with `id:…` and closed the detail pane."""
    from queuectl_tui.console.widgets.job_detail import JobDetail
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "v")  # close the pane first: Enter must open it
        await press(pilot, "slash", *"cmd:report", "enter")
        screen = app.screen
        assert screen.filter_text == "cmd:report"
        await press(pilot, "j", "enter")
        detail = screen.query_one(JobDetail)
        assert screen.filter_text == "cmd:report" and detail.display
        assert detail.job_id == screen.table.current["id"]
        await press(pilot, "enter")
        assert detail.display, "a second Enter keeps the pane open (v toggles it)"


async def test_long_ids_are_shown_whole_when_there_is_room(tmp_path, clock, monkeypatch):
    """Issue 9: at 140 columns `first-visible` showed as `first-visibl`."""
    monkeypatch.chdir(tmp_path)
    numbered_jobs("long.db", clock, 3, "first-visible-job-{:04d}")
    app = make_app("long.db", clock)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        table = app.screen.table
        shown = {str(row[1]) for row in (table.get_row_at(i) for i in range(table.row_count))}
        assert "first-visible-job-0002" in shown
        width = table.columns["id"].width
        assert width >= len("first-visible-job-0002"), width


def test_console_never_imports_the_cli_and_has_no_import_circle():
    """Issue 9: each console module imports in a fresh interpreter, and none
    pulls in the cli package (the headless face)."""
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2]
    modules = sorted("queuectl_tui." + ".".join(p.relative_to(root / "queuectl_tui")
                                                 .with_suffix("").parts)
                     for p in (root / "queuectl_tui" / "console").rglob("*.py"))
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "    assert 'queuectl_tui.cli' not in sys.modules, name\n")
    for name in modules:  # each alone, so an import circle cannot hide behind another
        result = subprocess.run([sys.executable, "-c", f"import {name}, sys; "
                                 "assert 'queuectl_tui.cli' not in sys.modules"],
                                capture_output=True, text=True, cwd=root)
        assert result.returncode == 0, f"{name}: {result.stderr[-500:]}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=root)
    assert result.returncode == 0, result.stderr[-500:]


async def test_dlq_counts_follow_the_filter(queue_db, clock):
    """Issue 9: the DLQ said "208 dead" for a filter matching 200, and the bulk
    retry did not say how many it would retry."""
    from textual.widgets import Static
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "slash", *"cmd:curl", "enter")
        await settle(pilot)
        status = str(app.screen.query_one("#status", Static).render())
        assert "2 of 3 dead match" in status, status
        await press(pilot, "R")
        dialog = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "the 2 dead jobs matching 'cmd:curl'" in dialog, dialog
        await press(pilot, "escape")


async def test_a_stopping_worker_with_a_job_counts_as_busy(queue_db, clock):
    """Issue 9: a worker asked to stop that still runs its job showed as not busy."""
    from textual.widgets import Static
    db = open_database(queue_db)
    Worker.update(stop_requested=True).where(Worker.id == W1).execute()
    db.close()
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        status = str(app.screen.query_one("#status", Static).render())
        assert "1 busy" in status, status


async def test_c_cancels_the_selected_job_after_asking(queue_db, clock):
    """Issue 9: `c` cancels the selected job (asks first; No is the default)."""
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.table.current["id"] == "media-sync"
        await press(pilot, "c", "enter")  # the focused button is No
        assert state_of("media-sync") == "pending"
        await press(pilot, "c", "y")
        assert state_of("media-sync") == "cancelled"
        await press(pilot, "j", "j", "j")  # long-build: running; cancelling it is a request
        assert app.screen.table.current["id"] == "long-build"
        await press(pilot, "c", "y")
        assert Job.get(Job.id == "long-build").cancel_requested_at is not None


async def test_queues_view_pauses_limits_and_opens_a_queues_jobs(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "6")
        screen = app.screen
        assert list(screen.rows) == ["default", "hooks", "mail", "media", "reports"]
        assert screen.rows["media"]["paused"] and screen.rows["hooks"]["limit"] == 2
        await press(pilot, "j", "j", "j", "p")  # media: resume
        assert not app.db.queue.queue_get("media")["paused"]
        await press(pilot, "p")
        assert app.db.queue.queue_get("media")["paused"]
        await press(pilot, "k", "k", "l", "ctrl+u", *"lots", "enter")  # hooks
        assert "invalid limit" in str(app.screen.query_one("#error").render())
        await press(pilot, "ctrl+u", *"5", "enter")
        assert app.db.queue.queue_get("hooks")["limit"] == 5
        await press(pilot, "enter")
        assert app.current_mode == "jobs" and app.screen.filter_text == "queue:hooks"
        await settle(pilot)
        assert sorted(shown_ids(app)) == ["hook-1", "hook-2"]


async def test_queue_filter_in_the_dlq(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "slash", *"queue:hooks", "enter")
        await settle(pilot)
        assert sorted(shown_ids(app)) == ["hook-1", "hook-2"]


async def test_a_blocked_job_shows_what_it_waits_for_and_a_jumps_there(queue_db, clock):
    q = Queue(open_database(queue_db), clock=clock, ids=Ids(random.Random(5)))
    q.enqueue(JobSpec(command="./publish.sh", id="publish", after=("digest",)))
    q.opened.close()
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "]", "]")  # All, Pending, Blocked
        assert shown_ids(app) == ["publish"]
        await press(pilot, "enter")
        await settle(pilot)
        shown = app.screen.query_one("#detail").shown
        assert shown["id"] == "publish" and shown["after"] == [{"id": "digest",
                                                                 "state": "pending"}]
        await press(pilot, "a")
        await settle(pilot)
        assert app.screen.filter_text == "id:digest" and shown_ids(app) == ["digest"]


async def test_schedules_view_pauses_runs_now_and_opens_its_jobs(schedules_db, clock):
    from queuectl_tui.engine import schedules
    app = make_app(schedules_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "7")
        screen = app.screen
        assert list(screen.rows) == ["heartbeat", "nightly-backup", "sync", "weekday-report"]
        assert screen.rows["nightly-backup"]["last_job_state"] == "dead"
        await press(pilot, "j", "j", "j", "p")  # weekday-report: resume
        assert not schedules.list_all("weekday-report")[0]["paused"]
        await press(pilot, "p")
        assert schedules.list_all("weekday-report")[0]["paused"]
        await press(pilot, "k", "r")  # sync: run now
        made = [j.id for j in Job.select().where(Job.schedule == "sync")]
        assert len(made) == 1 and made[0].startswith("sync@run-")
        assert screen.rows["sync"]["last_job_id"] == made[0]
        await press(pilot, "k", "k", "enter")  # heartbeat: its jobs in Jobs
        assert app.current_mode == "jobs" and app.screen.filter_text == "schedule:heartbeat"
        await settle(pilot)
        assert shown_ids(app) == [j.id for j in Job.select().where(Job.schedule == "heartbeat")]
        assert len(shown_ids(app)) == 1


async def test_a_refresh_while_the_console_quits_looks_for_no_widget(queue_db, clock):
    """CI once caught the live refresh starting while Textual took the DLQ
    apart on the way out: the screen still counted as mounted, its table was
    already gone, and the console ended on a traceback. Here a refresh runs at
    exactly that moment: the view half removed, the app shutting down. (Textual
    clears `is_running` before it prunes, so this is the check that holds here;
    `_pruning` covers a view removed while the app runs, which the console does
    not do today.)"""
    app = make_app(queue_db, clock, threaded=True)
    real_close_all = app._close_all
    seen: dict[str, int] = {}

    async def close_all_with_a_refresh_midway() -> None:
        view = app.view
        removing = app._prune(view)
        deadline = time.monotonic() + 10
        while view.query("#table") and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        seen["tables"] = len(view.query("#table"))
        seen["before"] = app.refresh_count
        await app.refresh_now()
        seen["after"] = app.refresh_count
        await removing
        await real_close_all()

    app._close_all = close_all_with_a_refresh_midway
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3")
        assert shown_ids(app) == ["backup-db", "hook-2", "hook-1"]
    assert seen["tables"] == 0  # the refresh did run with the table gone
    assert seen["after"] == seen["before"]  # and read nothing for a view going away


async def test_since_filter_lists_recent_jobs_and_bounds_a_bulk_retry(queue_db, clock):
    """since:10m in the DLQ: only the job that died in the last ten minutes is
    listed, and R retries it alone (the older dead jobs stay dead)."""
    clock.advance(3600)
    q = Queue(open_database(queue_db), clock=clock, ids=Ids(random.Random(5)))
    q.enqueue(JobSpec(command="false", id="fresh-fail", max_retries=0, priority=100))
    claimed = q.claim(W2, 30)
    assert claimed is not None and claimed.id == "fresh-fail"
    assert q.finish(claimed, W2, exit_code=1, error="exit code 1") == "dead"
    q.opened.close()
    clock.advance(60)
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"since:10m", "enter")
        assert shown_ids(app) == ["fresh-fail"]
        await press(pilot, "3", "slash", *"since:10m", "enter")
        assert shown_ids(app) == ["fresh-fail"]
        await press(pilot, "R", "y")
        assert state_of("fresh-fail") == "pending"
        assert [state_of(j) for j in ("backup-db", "hook-2", "hook-1")] == ["dead"] * 3
        await press(pilot, "slash", "ctrl+u", *"since:2h", "enter")
        assert shown_ids(app) == ["backup-db", "hook-2", "hook-1"]


def dead_behind_a_requeued_dependency(db: str, clock) -> None:
    """`late` died after `first` completed, then `first` was requeued: a DLQ
    retry of `late` puts it back to blocked, not pending. `alone` is plain dead."""
    q = Queue(open_database(db), clock=clock, ids=Ids(random.Random(4)))
    q.enqueue(JobSpec(command="true", id="first"))
    q.enqueue(JobSpec(command="exit 1", id="late", after=("first",), max_retries=0))
    q.enqueue(JobSpec(command="exit 1", id="alone", max_retries=0))
    for code in (0, 1, 1):
        claimed = q.claim("w", 30)
        q.finish(claimed, "w", exit_code=code, error=None if code == 0 else "exit code 1")
    q.requeue(["first"])
    assert {j: q.get(j).state for j in ("first", "late", "alone")} == \
        {"first": "pending", "late": "dead", "alone": "dead"}
    q.opened.close()


async def test_dlq_retry_says_where_the_job_went(tmp_path, clock):
    """The toast says the state the engine moved each job to: a job whose
    dependency has not completed is blocked, not 'pending again'."""
    db = str(tmp_path / "q.db")
    dead_behind_a_requeued_dependency(db, clock)
    app = make_app(db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3")
        assert shown_ids(app) == ["alone", "late"]
        await press(pilot, "j", "r")
        assert state_of("late") == "blocked"
        assert "late is blocked: it waits for a job that has not completed" in \
            [n.message for n in app._notifications]
        assert not any("pending again" in n.message for n in app._notifications)
    dead_behind_a_requeued_dependency(str(tmp_path / "q2.db"), clock)
    app = make_app(str(tmp_path / "q2.db"), clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "R", "y")
        assert (state_of("late"), state_of("alone")) == ("blocked", "pending")
        assert "1 job pending again, 1 blocked (waiting for jobs not completed)" in \
            [n.message for n in app._notifications]
