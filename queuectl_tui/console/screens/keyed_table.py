"""A view of one table whose rows are keyed by name (Queues, Schedules).

Rows are updated cell by cell, so fifty rows refresh as cheaply as one and the
cursor stays where it is; a new row sorts in by name; enter opens the row's jobs.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from queuectl_tui.console.screens.base import ViewScreen


def marked_cut(value: Any) -> Any:
    """A cell that shows an ellipsis where it is cut (DataTable crops silently,
    and reads a str as markup: `grep [a-z]` would lose its brackets)."""
    if isinstance(value, str):
        return Text(value, overflow="ellipsis", no_wrap=True)
    if isinstance(value, Text) and value.overflow != "ellipsis":
        value = value.copy()
        value.overflow, value.no_wrap = "ellipsis", True
    return value


class KeyedTableView(ViewScreen):
    COLUMNS: tuple[tuple[str, str, int | None], ...] = ()  # (key, heading, width; None: fit)
    BINDINGS = [  # the views add their own keys (Textual merges a subclass's bindings)
        Binding("enter", "open_jobs", "Jobs", show=False),
        Binding("j", "cursor(1)", "Down", show=False),
        Binding("k", "cursor(-1)", "Up", show=False),
        Binding("g,home", "cursor_to(0)", "First", show=False),
        Binding("G,end", "cursor_to(-1)", "Last", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}

    def compose_body(self) -> ComposeResult:
        yield DataTable(id=f"{self.VIEW}-table", cursor_type="row")
        yield Static("", id="status")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label, width in self.COLUMNS:
            table.add_column(Text(label, style="bold"), key=key, width=width)
        table.focus()

    def show_rows(self, found: list[dict[str, Any]],
                  cells_of: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Make the table hold exactly `found` (dicts with a "name"), in name order."""
        table = self.query_one(DataTable)
        wanted = [row["name"] for row in found]
        with self.app.batch_update():
            for name in [n for n in self.rows if n not in wanted]:
                table.remove_row(name)
                del self.rows[name]
            for row in found:
                cells = {key: marked_cut(value) for key, value in cells_of(row).items()}
                if row["name"] not in self.rows:
                    table.add_row(*[cells[key] for key, _, _ in self.COLUMNS], key=row["name"])
                else:
                    for key, _, _ in self.COLUMNS:
                        if table.get_cell(row["name"], key) != cells[key]:
                            table.update_cell(row["name"], key, cells[key])
                self.rows[row["name"]] = row
            if list(self.rows) != wanted:  # a new row sorts in by name
                table.sort(self.COLUMNS[0][0], key=lambda name: str(name))

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        name = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return self.rows.get(name)

    def action_cursor(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=table.cursor_row + step)

    def action_cursor_to(self, row: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=row if row >= 0 else table.row_count - 1)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_jobs()

    def action_open_jobs(self) -> None:
        """Enter: the selected row's jobs in Jobs."""
