"""Driving the console headless (tests, screenshots, the benchmark): wait until it is still."""

from __future__ import annotations

from typing import Any


async def settle(pilot: Any, rounds: int = 100) -> None:
    """Wait until refreshes and database calls have finished and messages are handled."""
    app = pilot.app
    for _ in range(rounds):
        await pilot.pause()
        await app.workers.wait_for_complete()
        await app.db.idle()
        await pilot.pause()
        if not app.refreshing and not app.db.busy:
            return
    raise TimeoutError("the console did not settle")


async def press_and_settle(pilot: Any, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)
