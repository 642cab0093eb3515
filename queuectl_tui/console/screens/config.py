"""Config: every key with its value, default and meaning; edit with validation."""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from queuectl_tui.console import reads
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.screens.base import ViewScreen
from queuectl_tui.console.screens.edit_value import EditValueDialog
from queuectl_tui.engine import CONFIG_KEYS, Queue, check_config


class ConfigScreen(ViewScreen):
    VIEW = "config"
    BINDINGS = [Binding("enter,e", "edit", "Edit"),
                Binding("j", "cursor(1)", "Down", show=False),
                Binding("k", "cursor(-1)", "Up", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, Any] = {}

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="config-table", cursor_type="row")
        yield Static("", id="config-help")
        yield Static("[dim]enter or e edits the selected key · values are shared by every "
                     "process using this database[/dim]", id="status")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # The key whole, first: it is the name `config set` takes.
        table.add_column(Text("KEY", style="bold"), key="key",
                         width=max(len(name) for name in CONFIG_KEYS))
        table.add_column(Text("VALUE", style="bold"), key="value", width=10)
        table.add_column(Text("DEFAULT", style="bold"), key="default", width=8)
        table.add_column(Text("MEANING", style="bold"), key="help")
        for name, key in CONFIG_KEYS.items():
            table.add_row(Text(name), "", cell(str(key.default)), cell(key.help), key=name)
        table.focus()

    def loader(self) -> Callable[[Queue], Any]:
        return reads.config_rows

    def apply(self, values: dict[str, Any], summary: Summary) -> None:
        self.values = values
        table = self.query_one(DataTable)
        for name, value in values.items():
            shown = cell(str(value), "bold" if value != CONFIG_KEYS[name].default else "")
            if table.get_cell(name, "value") != shown:
                table.update_cell(name, "value", shown)
        self._describe()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._describe()

    def _describe(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        name = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        self.query_one("#config-help", Static).update(
            f"[b]{name}[/b]: {CONFIG_KEYS[name].help}")

    def action_cursor(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=table.cursor_row + step)

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        await self.run_action("edit")  # as the key does: a read-only console refuses it

    def action_edit(self) -> None:
        table = self.query_one(DataTable)
        name = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        self.console.push_screen(edit_config_dialog(name, self.values.get(name)))


def cell(text: str, style: str = "") -> Text:
    """A cell cut with an ellipsis (the line under the table shows it whole)."""
    return Text(text, style=style, overflow="ellipsis", no_wrap=True)


def edit_config_dialog(key: str, value: Any) -> EditValueDialog:
    """The config key's own validator checks the text; the engine stores it."""
    return EditValueDialog(
        key, CONFIG_KEYS[key].help, "" if value is None else str(value),
        check=lambda text: check_config(key, text),
        save=lambda queue, text: queue.config_set(key, text),
        done=lambda stored: f"{key} = {stored}")
