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
from queuectl_tui.console.screens.confirm import ConfirmDialog
from queuectl_tui.engine import views
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
        monkeypatch.setattr(views, "count_jobs", refuse)
        await press(pilot, "D")
        assert question(app) == "Delete the 15 jobs that are not running?"
        await press(pilot, "escape", *"]]]]]", "D")  # the Dead tab
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
