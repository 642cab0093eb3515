"""Driving the console headless (tests, screenshots, the benchmark): wait until it is still."""

from __future__ import annotations

import time
from typing import Any, Callable


async def settle(pilot: Any, rounds: int = 100) -> None:
    """Wait until refreshes and database calls have finished and messages are handled."""
    app = pilot.app
    for _ in range(rounds):
        await pilot.pause()
        await app.workers.wait_for_complete()
        await app.db.idle()
        await pilot.pause()
        # a worker's result may start another (a log window read in steps)
        if not app.refreshing and not app.db.busy and all(w.is_finished for w in app.workers):
            return
    raise TimeoutError("the console did not settle")


async def press_and_settle(pilot: Any, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


async def until(pilot: Any, holds: Callable[[], bool], seconds: float = 10.0) -> None:
    """Settle, then poll until `holds()` is true: for what lands a frame after
    the data (a scroll placed once the view is laid out)."""
    deadline = time.monotonic() + seconds
    await settle(pilot)
    while not holds():
        if time.monotonic() > deadline:
            raise TimeoutError("the console never showed what was waited for")
        await pilot.pause(0.02)
