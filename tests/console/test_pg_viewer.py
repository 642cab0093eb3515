"""Issue 31: a console on PostgreSQL as the viewer role (SELECT only, the
GRANTs of docs/security.md) shows every view; read-only it offers no change,
and the server would refuse one anyway: a plain console's retry as the viewer
is one line saying so, and nothing changes."""

from __future__ import annotations

import random

import pytest

from queuectl_tui.clock import Ids
from queuectl_tui.console.app import ConsoleApp
from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from tests.pg_roles import dump, roles, run  # noqa: F401 - roles is a fixture

pytestmark = pytest.mark.postgres

SIZE = (120, 36)


def console(url: str, *, read_only: bool) -> ConsoleApp:
    return ConsoleApp(url, ids=Ids(random.Random(5)), refresh_interval=None,
                      threaded=True, steady=True, read_only=read_only)


async def test_the_viewer_role_s_console_shows_everything_and_changes_nothing(roles):
    owner, viewer = roles["worker"], roles["viewer"]
    assert run(owner, "enqueue", "--id", "dead1", "--max-retries", "0", "exit 3"
               ).returncode == 0
    assert run(owner, "enqueue", "--id", "later", "--delay", "1h", "true").returncode == 0
    # A dead job without a pool: the owner retries nothing; the DLQ needs one, so
    # the job is moved as a worker would (claim, fail) through the engine.
    from queuectl_tui.engine import Queue, open_database
    queue = Queue(open_database(owner))
    claimed = queue.claim("w", 30)
    queue.finish(claimed, "w", exit_code=3, error="exit code 3")
    queue.opened.close()
    before = dump(owner)
    app = console(viewer, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for view in ("1", "2", "3", "4", "5", "6", "7", "8"):
            await press(pilot, view)
            assert app.problem is None, (view, app.problem)
        await press(pilot, "3", "r", "y")
        assert app.summary is not None and app.summary.counts["dead"] == 1
    said: list[str] = []
    plain = console(viewer, read_only=False)
    notify = plain.notify
    plain.notify = lambda message, **kw: (said.append(str(message)), notify(message, **kw))[1]
    async with plain.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "r", "y")
        for _ in range(50):
            if any("refused the change" in s for s in said):
                break
            await pilot.pause(0.1)
        assert any("refused the change" in s for s in said), said
    assert dump(owner) == before
