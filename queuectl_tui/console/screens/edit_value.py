"""One value to edit in a dialog: checked as it is typed, saved on Enter.

Config keys and queue limits use it; the check is the engine's own parser, so
the dialog accepts exactly what the CLI accepts.
"""

from __future__ import annotations

from typing import Any, Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from queuectl_tui.console.context import console_of
from queuectl_tui.engine import Queue
from queuectl_tui.errors import QueuectlError


class EditValueDialog(ModalScreen[None]):
    """`check(text)` raises a QueuectlError for a bad value; `save(queue, text)`
    runs on the database thread; `done(result)` is the notice after saving."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, help_text: str, value: str,
                 check: Callable[[str], Any], save: Callable[[Queue, str], Any],
                 done: Callable[[Any], str]) -> None:
        super().__init__()
        self.title_text = title
        self.help_text = help_text
        self.value = value
        self.check = check
        self.save = save
        self.done = done

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="edit-config"):
            yield Static(f"[b]{self.title_text}[/b]\n[dim]{self.help_text}[/dim]")
            yield Input(value=self.value, id="value")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="success")

    def on_mount(self) -> None:
        console_of(self).steady_inputs(self)
        self.query_one("#dialog").can_focus = False  # it scrolls; the focus goes to the value
        self.query_one("#value", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        try:
            self.check(event.value)
        except QueuectlError as exc:
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
        try:
            self.check(text)
            result = await console_of(self).db.write(lambda q: self.save(q, text))
        except QueuectlError as exc:
            self.query_one("#error", Static).update(f"⚠ {exc}")
            return
        console_of(self).notify(self.done(result), timeout=3)
        console_of(self).request_refresh()
        self.dismiss(None)
