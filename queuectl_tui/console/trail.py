"""Where a jump came from, so Esc (or Backspace) can go back there.

A jump is `enter` from the DLQ, Queues, Schedules, History or a worker, `a`/`A`
to a job's dependencies or dependents, `h` to a job's history. Each records the
view it left (its filter, Jobs' state tab, the row under the cursor) and the
view it went to; going back restores the first and forgets the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LONGEST = 30  # older places are forgotten


@dataclass(frozen=True)
class Place:
    """A view as it was left: enough to show the same rows with the same cursor."""

    mode: str
    filter_text: str = ""
    state: str | None = None  # Jobs' state tab (None: not a Jobs view)
    anchor: Any = None  # the cursor row's keyset key (None: the top)


class Trail:
    """The jumps made, newest last: (the place left, the view gone to)."""

    def __init__(self) -> None:
        self._steps: list[tuple[Place, str]] = []

    def push(self, left: Place, to: str) -> None:
        self._steps.append((left, to))
        del self._steps[:-LONGEST]

    def pop(self) -> Place | None:
        return self._steps.pop()[0] if self._steps else None

    @property
    def last_to(self) -> str | None:
        """The view the newest jump went to (Esc there goes back)."""
        return self._steps[-1][1] if self._steps else None

    def __len__(self) -> int:
        return len(self._steps)
