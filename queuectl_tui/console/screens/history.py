"""History: the event log (every state change), newest first, filterable by job."""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text

from queuectl_tui.console import filters
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.formatting import ago, exit_text, one_line, state_text
from queuectl_tui.console.screens.listing import ListScreen
from queuectl_tui.console.widgets.window_table import Column
from queuectl_tui.engine import EventQuery, Queue, Window, event_window
from queuectl_tui.safe_text import printable


class HistoryScreen(ListScreen):
    VIEW = "history"
    NOUN = "events"
    FILTER_HINT = "job:ID state:dead worker:x or text in the job id / note; enter applies"

    def columns(self) -> list[Column]:
        return [Column("at", "WHEN", 10), Column("job", "JOB", 12, grow_to=40, cut_middle=True),
                Column("change", "CHANGE", 22), Column("try", "TRY", 3, hide_below=100),
                Column("exit", "EXIT", 7, hide_below=100),
                Column("worker", "WORKER", 13, hide_below=100), Column("note", "NOTE", None)]

    def render_row(self, ev: dict[str, Any]) -> list[Any]:
        now = self.console.summary.now if self.console.summary else ev["at"]
        change = Text(ev["from_state"] or "new", style="dim") + Text(" → ") \
            + state_text(ev["to_state"])
        return [ago(ev["at"], now), printable(ev["job_id"]), change, str(ev["attempt"]),
                exit_text(ev["exit_code"]),
                printable(ev["worker_id"] or ""), one_line(ev["note"])]

    def parse_filter(self, text: str) -> EventQuery:
        return filters.parse_events(text)

    def fetch(self, query: EventQuery, anchor: Any, before: int,
              after: int) -> Callable[[Queue], Window]:
        return lambda queue: event_window(query, anchor, before, after)

    def empty_message(self, summary: Summary) -> str:
        if self.filter_text:
            return "No event matches the filter. Press [b]esc[/b] to clear it."
        return ("No events yet: every state change of every job shows here.\n\n"
                "Press [b]n[/b] to enqueue a job.")

    def total_text(self, summary: Summary) -> str:
        return "events, newest first"
