"""The detail pane by the keyboard: tab focuses its fields (visibly), j/k/G scroll
them to what is below the fold, tab or esc goes back to the list."""

from __future__ import annotations

import random

from queuectl_tui.clock import Ids
from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.widgets.job_detail import FieldsScroll
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
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


async def test_output_tail_starts_at_a_whole_line_wraps_and_says_l(queue_db, clock):
    """A log longer than the first read (64 KB) starts mid-line: the pane starts at
    the next whole line; long lines wrap; its title is drawn; at 80 columns it keeps
    about half the width."""
    from queuectl_tui.console.widgets.output_tail import OutputTail
    from tests.console.test_log_viewer import add_job_with_log

    lines = [f"record {i:06d} " + "x" * (i % 7) for i in range(8000)]  # about 130 KB
    lines.append("the last line is long: " + "y" * 150)
    add_job_with_log(queue_db, clock, "long", ("\n".join(lines) + "\n").encode())
    app = make_app(queue_db, clock)
    async with app.run_test(size=(80, 40)) as pilot:
        await settle(pilot)
        tail = app.screen.query_one(OutputTail)
        assert tail.size.width >= 36
        assert tail.lines[0] in lines and tail.lines[-1] == lines[-1]
        shown = [row.strip("│ ") for row in text_of(app, tail).split("\n")]
        assert shown[0] == "output (log) · l: full log"  # the title, drawn
        assert "".join(shown[-5:]).endswith(lines[-1])  # folded onto rows, whole
