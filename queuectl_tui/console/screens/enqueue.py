"""`n`: a dialog that builds a job spec, checks it with the engine's rules, then saves it."""

from __future__ import annotations

import os
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from queuectl_tui.console.formatting import one_line
from queuectl_tui.engine import jobspec
from queuectl_tui.engine.durations import parse_duration
from queuectl_tui.engine.queue import Queue
from queuectl_tui.errors import QueuectlError, UsageError

FIELDS = (
    ("command", "Command", "shell command, e.g. curl -fsS https://example.com"),
    ("id", "Id", "optional; generated when empty"),
    ("max_retries", "Max retries", "default from config"),
    ("priority", "Priority", "0; higher runs first"),
    ("delay", "Delay", "e.g. 30, 10s, 5m (empty: now)"),
    ("timeout", "Timeout", "e.g. 60s (empty: config default)"),
)


def _whole(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name.replace('_', ' ')} must be a whole number, got {text!r}") from None


def _seconds(name: str, text: str) -> float:
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise UsageError(f"{name}: {exc}") from None


def spec_from_form(values: dict[str, str]) -> jobspec.JobSpec:
    """The form's text -> a validated JobSpec (the engine's checks, the CLI's durations)."""
    mapping: dict[str, Any] = {"command": values.get("command", "")}
    if values.get("id", "").strip():
        mapping["id"] = values["id"].strip()
    for name in ("max_retries", "priority"):
        if values.get(name, "").strip():
            mapping[name] = _whole(name, values[name].strip())
    for name in ("delay", "timeout"):
        if values.get(name, "").strip():
            mapping[name] = _seconds(name, values[name].strip())
    return jobspec.from_mapping(mapping)


def _enqueue(queue: Queue, spec: jobspec.JobSpec) -> dict[str, Any]:
    return queue.enqueue(spec, default_cwd=os.getcwd())  # where the console was started


class EnqueueDialog(ModalScreen[None]):
    """Enter saves (from any field); Esc cancels; errors show in red under the form."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="enqueue"):
            yield Static("[b]Enqueue a job[/b]", id="title")
            with Grid(id="form"):
                for name, label, placeholder in FIELDS:
                    yield Label(label)
                    yield Input(placeholder=placeholder, id=f"f-{name}")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Enqueue", id="save", variant="success")

    def on_mount(self) -> None:
        self.app.steady_inputs(self)  # type: ignore[attr-defined]

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#f-{name}", Input).value for name, _, _ in FIELDS}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        error = self.query_one("#error", Static)
        try:
            spec = spec_from_form(self.values())
        except UsageError as exc:
            error.update(f"⚠ {exc}")
            return
        error.update("")
        self.run_worker(self._save(spec), exclusive=True, group="enqueue")

    async def _save(self, spec: jobspec.JobSpec) -> None:
        console = self.app
        try:
            job = await console.db.write(_enqueue, spec, create=True)  # type: ignore[attr-defined]
        except QueuectlError as exc:
            self.query_one("#error", Static).update(f"⚠ {exc}")
            return
        console.notify(f"enqueued {job['id']}: {one_line(job['command'], 60)}", timeout=4,
                       markup=False)
        console.request_refresh()  # type: ignore[attr-defined]
        self.dismiss(None)
