"""Issue 28 in the console: the Held tab, `H` holds and releases, `e` opens the
job's form, checked before saving and refused when the job changed meanwhile."""

from __future__ import annotations

import random
from pathlib import Path

from queuectl_tui.clock import Ids
from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.screens.edit_job import EditJobDialog
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.models import Event, Job
from queuectl_tui.engine.storage.opening import open_database
from tests.console.conftest import keys_then_settle, make_app
from tests.console.test_flows import shown_ids, state_of
from tests.helpers import run_cli

SIZE = (120, 36)


def hold_some(db: str, clock) -> None:
    """digest and cleanup held before the console opens (the fixture's clock)."""
    q = Queue(open_database(db), clock=clock, ids=Ids(random.Random(5)))
    q.hold(["digest", "cleanup"])
    q.opened.close()


def test_jobs_held_tab(snap_compare, queue_db, clock):
    hold_some(queue_db, clock)
    assert snap_compare(make_app(queue_db, clock), terminal_size=SIZE,
                        run_before=keys_then_settle("]", "]", "]"))


def test_edit_job_form(snap_compare, queue_db, clock):
    # digest is the third row of All (newest first).
    assert snap_compare(make_app(queue_db, clock), terminal_size=SIZE,
                        run_before=keys_then_settle("j", "j", "e"))


def test_edit_job_form_shows_what_is_wrong(snap_compare, queue_db, clock):
    assert snap_compare(make_app(queue_db, clock), terminal_size=SIZE,
                        run_before=keys_then_settle("j", "j", "e", "tab", "ctrl+u", *"lots",
                                                    "enter"))


async def test_h_holds_and_releases_the_selected_job(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j")
        assert app.screen.table.current["id"] == "digest"
        await press(pilot, "H")
        assert state_of("digest") == "held"
        await press(pilot, "]", "]", "]")
        assert shown_ids(app) == ["digest"]
        await press(pilot, "H")
        assert state_of("digest") == "pending"
        await press(pilot, "[", "[", "[", "k", "k", "k", "j", "j", "j")  # long-build: running
        assert app.screen.table.current["id"] == "long-build"
        await press(pilot, "H")
        assert state_of("long-build") == "processing"


async def test_h_on_marked_jobs_holds_them_all(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "space", "space", "space", "H")  # media-sync, cleanup, digest
        assert [state_of(j) for j in ("media-sync", "cleanup", "digest")] == ["held"] * 3


async def test_e_saves_only_what_changed_and_records_it(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j", "e")
        assert isinstance(app.screen, EditJobDialog)
        await press(pilot, "tab", "ctrl+u", *"7", "enter")
        assert not isinstance(app.screen, EditJobDialog)
        row = Job.get(Job.id == "digest")
        assert (row.priority, row.command, row.queue) == (7, "python manage.py send_digest",
                                                          "mail")
        note = Event.select().where(Event.job_id == "digest").order_by(Event.seq.desc()).first()
        assert note.note == "edited: priority 1 -> 7"
        assert note.from_state == note.to_state == "pending"


async def test_e_refuses_a_save_when_the_job_changed_meanwhile(queue_db, clock, tmp_path):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j", "e", "tab", "ctrl+u", *"7")
        # Another process edits it meanwhile; then a worker claims it.
        other = run_cli(str(Path(tmp_path) / queue_db), "edit", "digest", "--priority", "3")
        assert other.returncode == 0, other.stderr
        await press(pilot, "enter")
        assert isinstance(app.screen, EditJobDialog)
        error = str(app.screen.query_one("#error").render())
        assert "changed since it was read" in error and "nothing was edited" in error
        assert Job.get(Job.id == "digest").priority == 3
        await press(pilot, "escape", "e")  # opened afresh: the form reads it again
        await app.db.write(lambda q: q.claim("w-test", 30))
        assert state_of("digest") == "processing"
        await press(pilot, "tab", "ctrl+u", *"9", "enter")
        error = str(app.screen.query_one("#error").render())
        assert "processing" in error and "nothing was edited" in error
        assert Job.get(Job.id == "digest").priority == 3


async def test_e_on_a_finished_job_says_why_not(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "G", "e")
        assert not isinstance(app.screen, EditJobDialog)
