"""Issue 31, who did what: an action taken in the console is recorded as the
console's, with its person, and History's `o` shows the audit trail."""

from __future__ import annotations

import getpass

from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.engine.storage.models import AuditEntry, Event
from tests.console.conftest import make_app

SIZE = (120, 36)


async def test_a_console_action_is_in_the_trail_and_the_job_s_history(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.table.current["id"] == "media-sync"
        await press(pilot, "c", "y")
        row = AuditEntry.select().order_by(AuditEntry.seq.desc()).get()
        assert (row.action, row.job_ids, row.via, row.user) == \
            ("cancel", "media-sync", "console", getpass.getuser())
        moved = Event.select().where(Event.job_id == "media-sync").order_by(
            Event.seq.desc()).get()
        assert moved.to_state == "cancelled" and moved.actor.endswith("(console)")
        await press(pilot, "4", "o")
        assert app.screen.actions and app.screen.table.buffer[0]["action"] == "cancel"
        await press(pilot, "o")
        assert not app.screen.actions and app.screen.table.buffer[0]["to_state"] == "cancelled"


def test_history_shows_who_did_what(snap_compare, queue_db, clock, monkeypatch):
    """The trail after a console cancel, a config change and a queue resume."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):  # getpass reads these first
        monkeypatch.setenv(name, "operator")
    monkeypatch.setenv("QUEUECTL_HOSTNAME", "fixture-host")
    async def act(pilot):
        await settle(pilot)
        await press(pilot, "c", "y")  # cancel media-sync
        app = pilot.app
        app.db.queue.config_set("backoff-base", 3)
        app.db.queue.queue_set("media", paused=False)
        await press(pilot, "4", "o")
        app.clear_notifications()
        await settle(pilot)
    assert snap_compare(make_app(queue_db, clock), terminal_size=SIZE, run_before=act)
