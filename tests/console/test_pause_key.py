"""`z` in Jobs: pause a running job after a confirmation, resume it the same
way; refused with a word for a job that is not running. The picture of a
paused job (its row and detail pane) is in test_snapshots.py."""

from __future__ import annotations

from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.screens.confirm import ConfirmDialog
from queuectl_tui.engine.storage.models import Job
from tests.console.conftest import make_app

SIZE = (120, 36)


def pause_asked(job_id: str) -> bool:
    return bool(Job.select(Job.pause_requested).where(Job.id == job_id).scalar())


def current_id(app) -> str:
    return app.screen.table.current["id"]


async def test_z_pauses_the_running_job_and_resumes_it_each_after_a_question(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j", "j")
        assert current_id(app) == "long-build"
        await press(pilot, "z")
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.question == "Pause running job long-build?"
        await press(pilot, "n")  # No changes nothing
        assert not pause_asked("long-build")
        await press(pilot, "z", "y")
        assert pause_asked("long-build")
        await press(pilot, "z")
        assert app.screen.question == "Resume paused job long-build?"
        await press(pilot, "y")
        assert not pause_asked("long-build")


async def test_z_on_a_job_that_is_not_running_says_so(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert current_id(app) == "media-sync"  # pending
        await press(pilot, "z")
        assert not isinstance(app.screen, ConfirmDialog)
        assert not pause_asked("media-sync")
        assert any("z pauses or resumes a running job" in str(n.message)
                   for n in app._notifications)


async def test_the_palette_pauses_the_selected_job(queue_db, clock):
    from tests.console.test_flows import choose_in_palette
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "j", "j", "j")
        await choose_in_palette(pilot, "pause or resume the selected running")
        assert isinstance(app.screen, ConfirmDialog)
        await press(pilot, "y")
        assert pause_asked("long-build")
