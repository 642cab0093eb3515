"""The counts refresh: keep the stored count of jobs per state up to date.

`status` and a console opening read the stored count and follow only the
events since it was written (engine/counts.py); refreshing it every
COUNTS_EVERY_S keeps that to a few seconds of events, not a whole table.
Only a saving: trouble here only means later.
"""

from __future__ import annotations

from queuectl_tui.engine import refresh_stored_counts
from queuectl_tui.workers.services.base import Service

COUNTS_EVERY_S = 5.0


class CountsRefresher(Service):
    """Also while the pool stops, so the count a `status` reads next is recent."""

    name = "counts"
    every = COUNTS_EVERY_S
    while_stopping = True

    def round(self, now: float) -> None:
        refresh_stored_counts(self.queue)
