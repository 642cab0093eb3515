"""The row of view tabs under the header: click one or press its number."""

from __future__ import annotations

from textual.widgets import Tab, Tabs

VIEWS = (("jobs", "1 Jobs"), ("workers", "2 Workers"), ("dlq", "3 DLQ"),
         ("history", "4 History"), ("config", "5 Config"), ("queues", "6 Queues"),
         ("schedules", "7 Schedules"), ("trends", "8 Trends"))


class ViewTabs(Tabs):
    """Tabs naming the views; the app switches mode when one is activated."""

    def __init__(self, active: str) -> None:
        super().__init__(*[Tab(label, id=name) for name, label in VIEWS], active=active)
        self.can_focus = False
