"""Pictures of every view and dialog on the fixture queue (120x36 unless named).

Regenerate after looking at a change: pytest tests/console --snapshot-update
"""

from __future__ import annotations

from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from tests.console.conftest import keys_then_settle, make_app

SIZE = (120, 36)


def _snap(snap_compare, app, *keys: str, size=SIZE) -> bool:
    return snap_compare(app, terminal_size=size, run_before=keys_then_settle(*keys))


def test_jobs_view(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock))


def test_jobs_running_job_detail_shows_its_output(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "j", "j", "j")


def test_jobs_paused_job_row_and_detail(snap_compare, queue_db, clock):
    """`z` (or `queuectl pause`) asked, and its worker stopped it 5 s ago:
    `paused` in the row, since when in the detail pane."""
    q = Queue(open_database(queue_db), clock=clock)
    q.pause(["long-build"])
    q.db.execute_sql("UPDATE job SET paused_at = ?, paused_for = 2 WHERE id = 'long-build'",
                     (clock.now() - 5,))
    q.opened.close()
    assert _snap(snap_compare, make_app(queue_db, clock), "j", "j", "j")


def test_jobs_filtered_by_field(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock),
                 "slash", *"cmd:curl", "enter")


def test_jobs_dead_tab(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "]", "]", "]", "]", "]", "]")


def test_jobs_waiting_in_run_order(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "s")


def test_jobs_small_terminal(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), size=(80, 24))


def test_workers_view(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "2")


def test_dlq_view_with_marks(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "3", "space")


def test_dlq_retry_all_asks_first(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "3", "R")


def test_history_view(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "4")


def test_history_of_one_job(snap_compare, queue_db, clock):
    # From Jobs: select flaky-sync (5th row) and press h.
    assert _snap(snap_compare, make_app(queue_db, clock), "j", "j", "j", "j", "h")


def test_config_view(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "5")


def test_config_edit_rejects_a_bad_value(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock),
                 "5", "enter", "ctrl+u", *"-1")


def test_enqueue_dialog(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "n")


def test_enqueue_dialog_shows_what_is_wrong(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock),
                 "n", *"sleep 1", "tab", "tab", *"lots", "enter")


def test_help(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "question_mark")


def test_empty_queue_says_how_to_start(snap_compare, tmp_path, clock, monkeypatch):
    from queuectl_tui.engine.storage.opening import open_database
    monkeypatch.chdir(tmp_path)
    open_database("empty.db").close()
    assert _snap(snap_compare, make_app("empty.db", clock))


def test_empty_workers_say_how_to_start(snap_compare, tmp_path, clock, monkeypatch):
    from queuectl_tui.engine.storage.opening import open_database
    monkeypatch.chdir(tmp_path)
    open_database("empty.db").close()
    assert _snap(snap_compare, make_app("empty.db", clock), "2")


def test_missing_database_is_explained(snap_compare, tmp_path, clock, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _snap(snap_compare, make_app("nothing-here.db", clock))


def test_queues_view(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "6")


def test_schedules_view(snap_compare, schedules_db, clock):
    assert _snap(snap_compare, make_app(schedules_db, clock), "7")


def test_scheduled_job_detail_names_its_schedule_and_tick(snap_compare, schedules_db, clock):
    assert _snap(snap_compare, make_app(schedules_db, clock), "7", "enter", "enter")


def test_log_viewer_of_a_running_job(snap_compare, queue_db, clock):
    # long-build (4th row) is running: its log opens following, its keys in the footer.
    assert _snap(snap_compare, make_app(queue_db, clock), "j", "j", "j", "l", size=(100, 30))


def test_log_viewer_search_marks_the_match(snap_compare, queue_db, clock):
    assert _snap(snap_compare, make_app(queue_db, clock), "j", "j", "j", "l", "g",
                 "slash", *"step 7", "enter", size=(100, 30))


def test_trends_view(snap_compare, trends_db, clock):
    assert _snap(snap_compare, make_app(trends_db, clock), "8", "j", "j")
