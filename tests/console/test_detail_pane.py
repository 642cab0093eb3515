"""The detail pane by the keyboard: tab focuses its fields (visibly), j/k/G scroll
them to what is below the fold, tab or esc goes back to the list."""

from __future__ import annotations

import random

from queuectl_tui.clock import Ids
from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.widgets.job_detail import FieldsScroll
from queuectl_tui.engine.db import open_database
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from tests.console.conftest import make_app
from tests.console.test_safe_output import screen_rows, text_of


async def test_tab_scrolls_the_detail_to_what_a_blocked_job_waits_for(queue_db, clock):
    q = Queue(open_database(queue_db), clock=clock, ids=Ids(random.Random(5)))
    q.enqueue(JobSpec(command="./publish.sh", id="publish", after=("digest",),
                      env={"STAGE": "prod"}, cwd="/srv/site"))
    q.opened.close()
    app = make_app(queue_db, clock)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "]", "]")  # the Blocked tab: publish
        screen = app.screen
        fields = screen.query_one(FieldsScroll)
        assert "waits for" not in text_of(app, fields)  # below the fold
        table = screen.table
        detail = screen.query_one("#detail")
        unfocused = (detail.styles.border_top, fields.styles.background)
        await press(pilot, "tab")
        assert app.focused is fields
        focused = (detail.styles.border_top, fields.styles.background)
        assert focused[0] != unfocused[0] and focused[1] != unfocused[1]  # it shows
        assert "Back to list" in screen_rows(app)[-1]  # the footer says how back
        await press(pilot, *["j"] * 12)
        assert "waits for   digest pending" in text_of(app, fields)
        await press(pilot, "g")
        assert "waits for" not in text_of(app, fields)
        await press(pilot, "G")
        assert "digest pending" in text_of(app, fields)
        await press(pilot, "tab")
        assert app.focused is table
        await press(pilot, "escape")  # esc in the list clears the filter, as before
        await press(pilot, "tab", "escape")
        assert app.focused is table
