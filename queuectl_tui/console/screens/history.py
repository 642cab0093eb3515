"""History: the event log (every state change), newest first, filterable by
job; `o` turns it to the audit trail (every operator action: who, what, when)."""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.binding import Binding

from queuectl_tui.console import filters
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.formatting import ago, exit_text, one_line, state_text
from queuectl_tui.console.screens.listing import ListScreen
from queuectl_tui.console.widgets.window_table import Column, WindowTable
from queuectl_tui.engine import (AuditQuery, EventQuery, Queue, Window, audit_window,
                                 event_window)
from queuectl_tui.safe_text import printable


class HistoryScreen(ListScreen):
    VIEW = "history"
    NOUN = "events"
    FILTER_HINT = "job:ID state:dead worker:x or text in the job id / note; enter applies"
    AUDIT_HINT = "text in the action, person, target or job ids; enter applies"
    BINDINGS = [Binding("o", "toggle_actions", "Who did what")]

    def __init__(self) -> None:
        self.actions = False  # showing operator actions rather than state changes
        super().__init__()

    def columns(self) -> list[Column]:
        if self.actions:
            return [Column("at", "WHEN", 10), Column("who", "WHO", 16, grow_to=28),
                    Column("via", "VIA", 7), Column("action", "ACTION", 15),
                    Column("on", "ON", 14, grow_to=40, cut_middle=True),
                    Column("detail", "DETAIL", None)]
        return [Column("at", "WHEN", 10), Column("job", "JOB", 12, grow_to=40, cut_middle=True),
                Column("change", "CHANGE", 22), Column("try", "TRY", 3, hide_below=100),
                Column("exit", "EXIT", 7, hide_below=100),
                Column("worker", "BY", 13, hide_below=100), Column("note", "NOTE", None)]

    def render_row(self, row: dict[str, Any]) -> list[Any]:
        now = self.console.summary.now if self.console.summary else row["at"]
        if self.actions:
            who = f"web:{row['token']}" if row["token"] else f"{row['user']}@{row['host']}"
            named = (row["job_ids"] or "").split()
            on = " ".join(named[:3]) + (f" +{row['jobs'] - 3}" if row["jobs"] > 3 else "")
            return [ago(row["at"], now), printable(who), row["via"], row["action"],
                    printable(on or row["target"] or ""), one_line(row["detail"] or "")]
        change = Text(row["from_state"] or "new", style="dim") + Text(" → ") \
            + state_text(row["to_state"])
        return [ago(row["at"], now), printable(row["job_id"]), change, str(row["attempt"]),
                exit_text(row["exit_code"]),
                printable(row["worker_id"] or row["actor"] or ""), one_line(row["note"])]

    def parse_filter(self, text: str) -> EventQuery | AuditQuery:
        if getattr(self, "actions", False):
            return AuditQuery(text=tuple(text.split()))
        return filters.parse_events(text)

    def fetch(self, query: Any, anchor: Any, before: int,
              after: int) -> Callable[[Queue], Window]:
        if isinstance(query, AuditQuery):
            return lambda queue: audit_window(query, anchor, before, after)
        return lambda queue: event_window(query, anchor, before, after)

    def on_window_table_chosen(self, event: WindowTable.Chosen) -> None:
        if not self.actions:
            super().on_window_table_chosen(event)
            return
        event.stop()
        named = (event.row.get("job_ids") or "").split()
        if named:
            self.open_in_jobs(named[0])

    async def action_toggle_actions(self) -> None:
        """State changes <-> operator actions: a new table, as the columns differ."""
        self.actions = not self.actions
        self.NOUN = "actions" if self.actions else "events"
        self.filter_text, self.query_obj = "", self.parse_filter("")
        box = self.query_one("#filter")
        box.value = ""
        box.placeholder = self.AUDIT_HINT if self.actions else self.FILTER_HINT
        await self.table.remove()
        new = WindowTable(self.columns(), self.render_row, self._key_of, self.row_id,
                          id="table")
        await self.query_one("#body").mount(new, before=self.query_one("#empty"))
        new.focus()
        self.update_status(self.console.summary)
        self.console.request_refresh(summary=False)

    def empty_message(self, summary: Summary) -> str:
        if self.filter_text:
            return "Nothing matches the filter. Press [b]esc[/b] to clear it."
        if self.actions:
            return ("No operator actions yet: every enqueue, retry, cancel, delete, "
                    "config or queue change a person makes shows here.\n\n"
                    "Press [b]o[/b] for the state changes.")
        return ("No events yet: every state change of every job shows here.\n\n"
                "Press [b]n[/b] to enqueue a job.")

    def total_text(self, summary: Summary) -> str:
        return "operator actions, newest first" if self.actions else "events, newest first"
