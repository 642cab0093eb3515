"""Whatever a job prints or is named, the console sends the terminal no control
character of it: everything a job's owner chose is shown escaped, the way
`queuectl show` shows it (safe_text.printable)."""

from __future__ import annotations

import os
import random

from queuectl_tui.clock import Ids
from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.engine import logs
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from queuectl_tui.safe_text import output_lines, overwritten
from tests.console.conftest import W3, make_app

SIZE = (140, 40)
ESC = "\x1b"
HOSTILE = f"{ESC}[31mRED{ESC}[0m {ESC}[2J{ESC}]0;pwned\x07 done"  # colour, clear, retitle
SHOWN = r"\x1b[2J\x1b]0;pwned\x07"  # how `queuectl show` writes the clear and the title


def screen_rows(app) -> list[str]:
    """The text of every cell the console would send the terminal now, row by row
    (the segments' text, without the styles Textual adds around it)."""
    update = app.screen._compositor.render_full_update()
    return ["".join(seg.text for strip in row for seg in strip) for row in update.strips]


def text_of(app, widget) -> str:
    """The screen's text inside one widget's region."""
    region = widget.region
    rows = screen_rows(app)[region.y:region.bottom]
    return "\n".join(row[region.x:region.right] for row in rows)


def controls_in(rows: list[str]) -> list[str]:
    return [row for row in rows
            if any(ord(c) < 32 or 0x7f <= ord(c) < 0xa0 for c in row)]


def add_hostile_job(db: str, clock) -> None:
    """A dead job whose command, error, stored tail and log all hold escapes, a
    progress bar drawn with carriage returns, and a tab."""
    q = Queue(open_database(db), clock=clock, ids=Ids(random.Random(8)))
    q.enqueue(JobSpec(command=f"printf '{HOSTILE}'", id="evil", priority=100, max_retries=0))
    claimed = q.claim(W3, 30)
    assert claimed is not None and claimed.id == "evil"
    fd = logs.open_for_append(q.opened.log_dir, claimed.seq)
    os.write(fd, (f"{HOSTILE}\n" + "".join(f"\rloading {i * 10}%" for i in range(11))
                  + "\nfetched\tok\n").encode())
    os.close(fd)
    clock.advance(1)
    q.finish(claimed, W3, exit_code=1, error=f"exit code 1: {HOSTILE}",
             stdout_tail=f"{HOSTILE}\n", stderr_tail=HOSTILE)
    q.opened.close()


def test_output_lines_apply_carriage_returns_and_escape():
    assert overwritten("10%\r20%\r100%") == "100%"
    assert overwritten("downloading\rdone") == "doneloading"  # as a terminal leaves it
    assert output_lines("a\r\nb\r\n") == ["a", "b", ""]
    assert output_lines(f"x\ty{ESC}[2J") == [r"x       y\x1b[2J"]


async def test_table_detail_and_output_show_escapes_not_control_characters(queue_db, clock):
    """The table's command, the detail's command and error, and the output pane,
    each escaped: taking `printable` out of any one of them fails this test."""
    add_hostile_job(queue_db, clock)
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.table.current["id"] == "evil"  # highest priority: first row
        assert controls_in(screen_rows(app)) == []
        table = text_of(app, screen.table)
        assert r"printf '\x1b[31mRED\x1b[0m \x1b[2J" in table
        fields = screen.query_one("#fields-scroll")
        assert r"\x1b[2J" in text_of(app, fields).replace("\n", "")  # the command
        await press(pilot, "tab", "G")  # the fields' end: the last error
        assert controls_in(screen_rows(app)) == []
        assert r"exit code 1: \x1b[31mRED" in text_of(app, fields)
        await press(pilot, "tab")
        output = text_of(app, screen.query_one("#output"))
        assert SHOWN in output
        assert "loading 100%" in output and "loading 90%" not in output  # the latest state
        assert "fetched ok" in output.replace("       ", " ")  # the tab as spaces

        await press(pilot, "3")  # the DLQ: its error and command columns
        assert controls_in(screen_rows(app)) == []
        assert r"exit code 1: \x1b[31mRED" in text_of(app, app.screen.table)

        await press(pilot, "4")  # History: the error in the notes
        assert controls_in(screen_rows(app)) == []


async def test_markup_in_a_command_is_shown_as_typed(queue_db, clock):
    """Square brackets are text: a command is never read as Textual markup (the
    cancel question quotes it)."""
    q = Queue(open_database(queue_db), clock=clock, ids=Ids(random.Random(8)))
    q.enqueue(JobSpec(command="echo '[/] [b]not bold[/b]'", id="brackets", priority=100))
    q.opened.close()
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        assert "echo '[/] [b]not bold[/b]'" in "\n".join(screen_rows(app))


async def test_markup_in_a_schedule_command_is_text(queue_db, clock):
    from queuectl_tui.engine import schedules
    q = Queue(open_database(queue_db), clock=clock, ids=Ids(random.Random(8)))
    schedules.add(q, "brackets", "@hourly", f"echo '[/] {ESC}[2J'")
    q.opened.close()
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "7")
        rows = screen_rows(app)
        assert controls_in(rows) == []
        assert r"echo '[/] \x1b[2J'" in "\n".join(rows)
