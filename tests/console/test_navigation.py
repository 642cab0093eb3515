"""Issue 26, "where you are and what a key will do": counts in every bulk
question, everything reachable at 80x24, back after a jump, cut text marked,
the palette and help, filters that say what they did not understand, and acting
on a job as the CLI can. Through Pilot on the fixture queue."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.widgets import Static

from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.screens import dlq, job_list
from queuectl_tui.console.screens.confirm import ConfirmDialog
from tests.console.conftest import make_app

SIZE = (120, 36)
SMALL = (80, 24)


def texts(screen) -> str:
    """Every Static's text on a screen, joined: what a person can read there."""
    return " | ".join(str(w.render()) for w in screen.query(Static))


async def until(pilot, predicate, what: str, timeout: float = 10.0) -> None:
    """Poll with a deadline (counts arrive from the slow thread)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def question(app) -> str:
    assert isinstance(app.screen, ConfirmDialog), app.screen
    return app.screen.question


# ---------------------------------------------------------------- 1. counts in bulk questions

async def test_every_bulk_question_says_how_many(queue_db, clock, monkeypatch):
    """Without a filter the numbers are the header's (followed counts): no job
    is counted for the question, so it costs nothing at 1,000,000 jobs."""
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)

        def refuse(query):
            raise AssertionError("an unfiltered bulk question counted jobs")
        for screen in (job_list, dlq):
            monkeypatch.setattr(screen, "count_jobs", refuse)
        await press(pilot, "D")
        assert question(app) == "Delete the 15 jobs that are not running?"
        await press(pilot, "escape", *"]]]]]]", "D")  # the Dead tab
        assert question(app) == "Delete the 3 dead jobs?"
        await press(pilot, "escape", "R")
        assert question(app) == "Retry the 3 dead jobs?"
        await press(pilot, "escape", "3", "D")
        assert question(app) == "Delete the 3 dead jobs?"
        await press(pilot, "escape", "R")
        assert question(app) == "Retry the 3 dead jobs?"
        await press(pilot, "escape", "space", "D")
        assert question(app) == "Delete 1 marked job?"
        await press(pilot, "escape")


async def test_a_filtered_bulk_question_counts_on_the_slow_thread(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"cmd:curl", "enter", "D")
        await until(pilot, lambda: "counting" not in question(app), "the count")
        assert question(app) == "Delete the 2 jobs matching 'cmd:curl' that are not running?"
        await press(pilot, "escape", "3", "slash", *"queue:hooks", "enter", "D")
        await until(pilot, lambda: "counting" not in question(app), "the DLQ's count")
        assert question(app) == "Delete the 2 dead jobs matching 'queue:hooks'?"
        await press(pilot, "escape")


# ---------------------------------------------------------------- 2. reachable at 80x24

async def test_a_bad_filter_says_why_on_its_own_lines_at_80_columns(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"state:bogus", "enter")
        error = app.screen.query_one("#filter-error", Static)
        assert error.display and "unknown state 'bogus'" in str(error.render())
        assert error.region.right <= 80 and error.region.height >= 2  # wrapped, all of it
        await press(pilot, "escape", "escape")
        assert not error.display


async def test_the_enqueue_dialog_keeps_its_error_and_buttons_in_sight_at_80x24(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await press(pilot, "n", "enter")
        screen = app.screen
        visible = screen.region
        error = screen.query_one("#error", Static)
        assert "command must not be empty" in str(error.render())
        for widget in (error, screen.query_one("#save"), screen.query_one("#cancel")):
            assert visible.contains_region(widget.region), widget
        for _ in range(7):  # Tab to the last field: it scrolls into view
            await press(pilot, "tab")
        after = screen.query_one("#f-after")
        assert after.has_focus
        assert screen.query_one("#form-scroll").region.contains_region(after.region)


@pytest.mark.parametrize("view", ["1", "2", "3", "4", "5", "6", "7"])
async def test_the_footer_keeps_help_and_quit_at_80_columns(queue_db, clock, view):
    from textual.widgets._footer import FooterKey
    app = make_app(queue_db, clock)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await press(pilot, view)
        await settle(pilot)
        keys = {k.key: k for k in app.screen.query(FooterKey)}
        for key in ("question_mark", "q"):
            assert key in keys, f"view {view}: {sorted(keys)}"
            assert keys[key].region.right <= 80, (view, key, keys[key].region)


async def test_workers_footer_says_what_a_will_do(queue_db, clock):
    from textual.widgets._footer import FooterKey
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2")

        def described() -> list[str]:
            return [k.description for k in app.screen.query(FooterKey) if k.key == "a"]
        assert described() == ["Show stopped"]
        await press(pilot, "a")
        await settle(pilot)
        assert app.screen.include_stopped and described() == ["Hide stopped"]
        await press(pilot, "a")
        await settle(pilot)
        assert not app.screen.include_stopped and described() == ["Show stopped"]


# ---------------------------------------------------------------- 3. back after a jump

async def test_esc_goes_back_from_a_jump_with_the_filter_and_cursor(queue_db, clock):
    from tests.console.test_flows import shown_ids
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "slash", *"cmd:curl", "enter", "j")  # hook-1 selected
        assert app.screen.table.current["id"] == "hook-1"
        await press(pilot, "enter")
        assert app.current_mode == "jobs" and app.screen.filter_text == "id:hook-1"
        assert "(esc goes back)" in str(app.screen.query_one("#status", Static).render())
        await press(pilot, "escape")
        await settle(pilot)
        assert app.current_mode == "dlq" and app.screen.filter_text == "cmd:curl"
        assert app.screen.table.current["id"] == "hook-1"
        await press(pilot, "escape")  # no jump left: esc clears the filter again
        assert app.current_mode == "dlq" and app.screen.filter_text == ""
        await press(pilot, "6", "enter")  # Queues -> its jobs, and back
        assert app.current_mode == "jobs"
        await press(pilot, "escape")
        assert app.current_mode == "queues"


async def test_jumps_go_both_ways_between_a_job_and_what_waits_for_it(queue_db, clock):
    import random

    from queuectl_tui.clock import Ids
    from queuectl_tui.engine.jobspec import JobSpec
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    from tests.console.test_flows import shown_ids
    q = Queue(open_database(queue_db), clock=clock, ids=Ids(random.Random(5)))
    q.enqueue(JobSpec(command="./publish.sh", id="publish", after=("digest",)))
    q.enqueue(JobSpec(command="./notify.sh", id="notify", after=("digest",)))
    q.opened.close()
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "]", "]")  # Blocked: notify, publish
        assert shown_ids(app) == ["notify", "publish"]
        await press(pilot, "j", "a")  # publish -> digest
        await settle(pilot)
        assert app.screen.filter_text == "id:digest" and shown_ids(app) == ["digest"]
        await press(pilot, "A")  # digest -> what waits for it
        await settle(pilot)
        assert sorted(shown_ids(app)) == ["notify", "publish"]
        await press(pilot, "escape")
        await settle(pilot)
        assert shown_ids(app) == ["digest"]
        await press(pilot, "backspace")
        await settle(pilot)
        assert app.screen.state_name() == "blocked" and app.screen.filter_text == ""
        assert app.screen.table.current["id"] == "publish"


async def test_enter_on_a_busy_worker_opens_its_job(queue_db, clock):
    from tests.console.test_flows import shown_ids
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2", "enter")
        await settle(pilot)
        assert app.current_mode == "jobs" and shown_ids(app) == ["long-build"]
        await press(pilot, "escape")
        assert app.current_mode == "workers"


# ---------------------------------------------------------------- 4. cut text is marked

def line_texts(widget) -> list[str]:
    """The widget's lines as drawn (what the terminal gets)."""
    return [widget.render_line(y).text for y in range(widget.size.height)]


async def test_ids_keep_their_ends_and_cut_text_ends_in_an_ellipsis(tmp_path, clock, monkeypatch):
    import random

    from queuectl_tui.clock import Ids
    from queuectl_tui.engine.jobspec import JobSpec
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    monkeypatch.chdir(tmp_path)
    q = Queue(open_database("ticks.db"), clock=clock, ids=Ids(random.Random(1)))
    q.enqueue_many([JobSpec(command="curl -fsS https://example.invalid/a/very/long/path",
                            id=f"every-minute@20261207T{t}Z") for t in ("1433", "1434")])
    q.enqueue(JobSpec(command="sleep 600", id="sleeper"))
    assert q.claim("w", 600) is not None
    q.opened.close()
    clock.advance(330)
    app = make_app("ticks.db", clock)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        lines = "\n".join(line_texts(app.screen.table))
        assert "1434Z" in lines and "1433Z" in lines, lines
        assert "started 5m30s ago" in lines, lines
        assert "curl -fsS" in lines and "…" in lines, lines  # the command, marked as cut


@pytest.mark.parametrize("size", [SMALL, (140, 40)])
async def test_config_keys_show_whole(queue_db, clock, size):
    app = make_app(queue_db, clock)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await press(pilot, "5")
        lines = "\n".join(line_texts(app.screen.query_one("#config-table")))
        for key in ("retention-completed", "retention-cancelled", "finish-hook-timeout"):
            assert key in lines, lines


async def test_header_counts_and_state_tabs_fit_80_columns(queue_db, clock):
    from textual.widgets import Tab
    app = make_app(queue_db, clock)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        header = str(app.screen.query_one("#counts", Static).render())
        assert "0 canc" in header and header.rstrip().endswith("2 workers"), header
        counts = app.screen.query_one("#counts", Static)
        assert len(header.rstrip()) <= counts.size.width, (header, counts.size)
        for tab in app.screen.query_one("#state-tabs").query(Tab):
            assert tab.region.right <= 80, (str(tab.label), tab.region)
        assert "/min" in str(app.screen.query_one("#rate", Static).render())


# ---------------------------------------------------------------- 5. palette and help

async def palette_names(pilot) -> list[str]:
    """Every entry the palette lists with nothing typed."""
    from textual.command import CommandList
    await press(pilot, "ctrl+p")
    hits = pilot.app.screen.query_one(CommandList)
    deadline = time.monotonic() + 10
    count = -1
    while count != hits.option_count or count == 0:  # until the list stops growing
        assert time.monotonic() < deadline, "the palette listed nothing"
        count = hits.option_count
        await pilot.pause(0.1)
    names = [str(hits.get_option_at_index(i).prompt).split("\n")[0]
             for i in range(hits.option_count)]
    await press(pilot, "escape")
    return names


async def test_the_palette_has_every_action_and_one_quit(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        names = " | ".join(await palette_names(pilot))
        for wanted in ("Queues view", "Show blocked jobs", "Show cancelled jobs",
                       "Pause or resume the selected queue", "Limit the selected queue",
                       "Run the selected schedule now", "Switch the order", "Reverse the order",
                       "Cancel the selected or marked jobs", "Mark or unmark the selected job",
                       "Copy the selected job's id", "Enqueue a job like the selected one",
                       "Retry or requeue the selected job", "Back"):
            assert wanted in names, wanted
        assert names.lower().count("quit") == 1, names


async def test_help_is_for_this_view_titled_and_scrolls_with_j(queue_db, clock):
    from textual.containers import VerticalScroll
    app = make_app(queue_db, clock)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await press(pilot, "question_mark")
        box = app.screen.query_one("#dialog", VerticalScroll)
        text = str(app.screen.query_one("#keys", Static).render())
        assert box.border_title == "Keys: Jobs" and "closes" in box.border_subtitle
        assert "switch the order" in text and "Everywhere" in text
        assert "start one more worker" not in text  # Workers' keys are Workers' help
        assert box.scroll_y == 0 and box.max_scroll_y > 0
        await press(pilot, "j", "j")
        assert box.scroll_y == 2
        await press(pilot, "k")
        assert box.scroll_y == 1
        await press(pilot, "escape", "2", "question_mark")
        text = str(app.screen.query_one("#keys", Static).render())
        assert "start one more worker" in text and "switch the order" not in text


# ---------------------------------------------------------------- 6. filters and the tab

async def test_an_unknown_field_is_said_and_the_status_names_the_tab(queue_db, clock):
    from tests.console.test_flows import shown_ids
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"foo:bar", "enter")
        assert "unknown field 'foo'" in str(app.screen.query_one("#filter-error").render())
        assert app.screen.filter_text == "" and len(shown_ids(app)) == 16
        await press(pilot, "escape", "escape", "]", "]", "]", "]", "]", "]")
        status = str(app.screen.query_one("#status", Static).render())
        assert status.startswith("3 jobs in Dead"), status
        await press(pilot, "slash", *"cmd:pg_dump", "enter")
        status = str(app.screen.query_one("#status", Static).render())
        assert status.startswith("1 shown in Dead"), status


# ---------------------------------------------------------------- 7. act as the CLI can

async def test_r_requeues_done_and_cancelled_jobs(queue_db, clock):
    from queuectl_tui.engine.storage.models import Job
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *"]]]]]]]")  # Done: report-08 first
        assert app.screen.table.current["id"] == "report-08"
        await press(pilot, "r")
        assert Job.get(Job.id == "report-08").state == "pending"
        await press(pilot, "]", "]", "slash", *"id:cleanup", "enter", "c", "y")  # All
        assert Job.get(Job.id == "cleanup").state == "cancelled"
        await press(pilot, "r")
        assert Job.get(Job.id == "cleanup").state == "pending"


async def test_copy_id_and_command(queue_db, clock):
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "y")
        assert app.clipboard == "media-sync"
        await press(pilot, "Y")
        assert app.clipboard == "rsync -a /srv/media backup:/media"


async def test_enqueue_takes_a_queue_and_after_and_n_fills_in_a_similar_job(queue_db, clock):
    from queuectl_tui.engine.storage.models import Dependency, Job
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"id:digest", "enter", "N")
        screen = app.screen
        values = screen.values()
        assert values["command"] == "python manage.py send_digest"
        assert values["queue"] == "mail" and values["priority"] == "1"
        await press(pilot, "tab", *"digest-2", *(["tab"] * 6), *"digest", "enter")
        job = Job.get(Job.id == "digest-2")
        assert (job.command, job.queue, job.priority, job.state) == \
            ("python manage.py send_digest", "mail", 1, "blocked")
        assert [d.needs for d in Dependency.select().where(Dependency.job_id == "digest-2")] \
            == ["digest"]


# ---------------------------------------------------------------- 8. small ones

def test_small_wordings():
    from rich.text import Text

    from queuectl_tui.console.formatting import exit_text, plural, span, two_columns
    from queuectl_tui.console.screens.jobs import cancel_notice
    from queuectl_tui.console.widgets.status_strip import per_minute
    assert plural(1, "job") == "1 job" and plural(1234, "job") == "1,234 jobs"
    assert cancel_notice([("a", "cancelled")]) == "cancelled 1 job"
    assert cancel_notice([("a", "stopping")]) == \
        "stopping 1 running job (SIGTERM, then SIGKILL)"
    assert exit_text(-15) == "SIGTERM" and exit_text(-9) == "SIGKILL" and exit_text(3) == "3"
    assert span(9.96) == "10s" and span(9.94) == "9.9s"
    assert [per_minute(r) for r in (0.2, 0.005, 1000)] == ["12/min", "0.3/min", "60.0k/min"]
    shown = two_columns([("command", Text("for i in 1 2\ndo echo $i; done")), ("id", "x")],
                        width=30).plain.splitlines()
    assert shown[1].startswith(" " * 8) and shown[1].strip() == "do echo $i; done", shown


async def test_cursor_row_is_readable_in_16_colours(queue_db, clock, monkeypatch):
    from queuectl_tui.console.app import ConsoleApp
    monkeypatch.setattr(ConsoleApp, "few_colours", lambda self: True)  # as in tmux, TERM=screen
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.has_class("-ansi16")
        style = app.screen.table.get_component_rich_style("datatable--cursor")
        assert (style.color.number, style.bgcolor.number) == (0, 6), style  # black on cyan


async def test_history_names_the_signal_and_empty_jobs_count_eight_views(tmp_path, clock,
                                                                      monkeypatch, queue_db):
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "4")
        exits = [str(app.screen.table.get_cell(k, "exit")) for k in app.screen.table.rows]
        assert "SIGTERM" in exits and "-15" not in exits, exits
        await press(pilot, "1", "slash", *"id:nothing-here", "enter")
        assert "1..8 for other views" in str(app.screen.query_one("#empty", Static).render())


async def test_stop_all_for_one_worker_says_so(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2", "x")  # fixture-w1 asked to stop: one live worker left
        await settle(pilot)
        await press(pilot, "X")
        assert question(app) == "Stop the only worker?"
        await press(pilot, "escape")


async def test_a_six_field_cron_shows_whole(schedules_db, clock):
    import random

    from queuectl_tui.clock import Ids
    from queuectl_tui.engine import schedules
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    q = Queue(open_database(schedules_db), clock=clock, ids=Ids(random.Random(7)))
    schedules.add(q, "every-ten-seconds", "*/10 * * * * *", "echo tick")
    q.opened.close()
    app = make_app(schedules_db, clock)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await press(pilot, "7")
        lines = "\n".join(line_texts(app.screen.query_one("#schedules-table")))
        assert "*/10 * * * * *" in lines and "every-ten-seconds" in lines, lines



async def test_the_status_line_marks_a_cut_with_an_ellipsis(queue_db, clock):
    """Beside a toast (checked in tmux at 80x24: Textual's toast rack kept two
    columns free, where the status line's last characters showed) and alone."""
    app = make_app(queue_db, clock)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        status = app.screen.query_one("#status", Static)
        assert line_texts(status)[0].rstrip().endswith("…"), line_texts(status)
