"""Config: every key with its value, default and meaning; edit with validation."""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Static

from queuectl_tui.console import data
from queuectl_tui.console.data import Summary
from queuectl_tui.console.screens.base import ViewScreen
from queuectl_tui.engine import config
from queuectl_tui.engine.queue import Queue
from queuectl_tui.errors import QueuectlError, UsageError


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
        table.add_column(Text("KEY", style="bold"), key="key", width=14)
        table.add_column(Text("VALUE", style="bold"), key="value", width=10)
        table.add_column(Text("DEFAULT", style="bold"), key="default", width=8)
        table.add_column(Text("MEANING", style="bold"), key="help")
        for name, key in config.KEYS.items():
            table.add_row(name, "", str(key.default), key.help, key=name)
        table.focus()

    def loader(self) -> Callable[[Queue], Any]:
        return data.config_rows

    def apply(self, values: dict[str, Any], summary: Summary) -> None:
        self.values = values
        table = self.query_one(DataTable)
        for name, value in values.items():
            shown = Text(str(value), style="bold" if value != config.KEYS[name].default else "")
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
            f"[b]{name}[/b]: {config.KEYS[name].help}")

    def action_cursor(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=table.cursor_row + step)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def action_edit(self) -> None:
        table = self.query_one(DataTable)
        name = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        self.console.push_screen(EditConfigDialog(name, self.values.get(name)))


class EditConfigDialog(ModalScreen[None]):
    """Checks the value as it is typed; Enter saves only a valid one."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, key: str, value: Any) -> None:
        super().__init__()
        self.key = key
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="edit-config"):
            yield Static(f"[b]{self.key}[/b]\n[dim]{config.KEYS[self.key].help}[/dim]")
            yield Input(value="" if self.value is None else str(self.value), id="value")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="success")

    def on_mount(self) -> None:
        self.app.steady_inputs(self)  # type: ignore[attr-defined]

    def _check(self, text: str) -> Any:
        return config.validate(self.key, text)

    def on_input_changed(self, event: Input.Changed) -> None:
        try:
            self._check(event.value)
        except UsageError as exc:
            self.query_one("#error", Static).update(f"⚠ {exc}")
        else:
            self.query_one("#error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.run_worker(self._save(event.value), exclusive=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.run_worker(self._save(self.query_one(Input).value), exclusive=True)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    async def _save(self, text: str) -> None:
        error = self.query_one("#error", Static)
        try:
            self._check(text)
            stored = await self.app.db.call(  # type: ignore[attr-defined]
                lambda q: q.config_set(self.key, text))
        except QueuectlError as exc:
            error.update(f"⚠ {exc}")
            return
        self.app.notify(f"{self.key} = {stored}", timeout=3)
        self.app.request_refresh()  # type: ignore[attr-defined]
        self.dismiss(None)
