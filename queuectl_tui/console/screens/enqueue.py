"""`n`: a dialog that builds a job spec, checks it with the engine's rules, then saves it.

`N` on a job opens it filled in from that job ("enqueue similar"): command,
queue, retries, priority and timeout to edit, its directory and environment kept.
"Enqueue held" saves it held (`enqueue --hold`). The form is also the frame of
`e`, edit a job that has not started (screens/edit_job.py).
The dialog scrolls: at 80x24 its last fields and buttons are below the fold,
and Tab brings the focused field into view.
"""

from __future__ import annotations

import json
import os
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from queuectl_tui.console.context import console_of
from queuectl_tui.console.formatting import one_line
from queuectl_tui.engine import JobSpec, Queue, parse_duration, spec_from_mapping
from queuectl_tui.errors import QueuectlError, UsageError

FIELDS = (
    ("command", "Command", "shell command, e.g. curl -fsS https://example.com"),
    ("id", "Id", "optional; generated when empty"),
    ("max_retries", "Max retries", "default from config"),
    ("priority", "Priority", "0; higher runs first"),
    ("delay", "Delay", "e.g. 30, 10s, 5m (empty: now)"),
    ("timeout", "Timeout", "e.g. 60s (empty: config default)"),
    ("queue", "Queue", "default"),
    ("after", "After", "ids of jobs that must complete first: a1,b2"),
)


def form_whole(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name.replace('_', ' ')} must be a whole number, got {text!r}") from None


def form_seconds(name: str, text: str) -> float:
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise UsageError(f"{name}: {exc}") from None


def spec_from_form(values: dict[str, str], keep: dict[str, Any] | None = None,
                   hold: bool = False) -> JobSpec:
    """The form's text -> a validated JobSpec (the engine's checks, the CLI's
    durations); `keep` adds fields the form does not show (a similar job's
    directory and environment)."""
    mapping: dict[str, Any] = {"command": values.get("command", ""), **(keep or {})}
    if hold:
        mapping["hold"] = True
    for name in ("id", "queue"):
        if values.get(name, "").strip():
            mapping[name] = values[name].strip()
    after = values.get("after", "").replace(",", " ").split()
    if after:
        mapping["after"] = after
    for name in ("max_retries", "priority"):
        if values.get(name, "").strip():
            mapping[name] = form_whole(name, values[name].strip())
    for name in ("delay", "timeout"):
        if values.get(name, "").strip():
            mapping[name] = form_seconds(name, values[name].strip())
    return spec_from_mapping(mapping)


def _enqueue(queue: Queue, spec: JobSpec) -> dict[str, Any]:
    return queue.enqueue(spec, default_cwd=os.getcwd())  # where the console was started


def similar(job: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """(the form's values, the fields kept) for a job like `job`: what `N` opens."""
    values = {"command": job["command"], "queue": job.get("queue") or "",
              "max_retries": str(job["max_retries"]), "priority": str(job["priority"]),
              "timeout": f"{job['timeout']:g}s" if job.get("timeout") else ""}
    keep: dict[str, Any] = {}
    if job.get("cwd"):
        keep["cwd"] = job["cwd"]
    if job.get("env"):
        keep["env"] = json.loads(job["env"]) if isinstance(job["env"], str) else job["env"]
    return values, keep


class EnqueueDialog(ModalScreen[None]):
    """Enter saves (from any field); Esc cancels; errors show in red under the form."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]
    FIELDS = FIELDS  # (name, label, placeholder) of each input, in order
    SAVE = "Enqueue"  # the save button's words

    def __init__(self, values: dict[str, str] | None = None, keep: dict[str, Any] | None = None,
                 like: str | None = None) -> None:
        super().__init__()
        self.start_values = values or {}
        self.keep = keep or {}
        self.like = like  # the job this one is made like, if any

    def heading(self) -> str:
        return "[b]Enqueue a job[/b]" if self.like is None else (
            f"[b]Enqueue a job like {self.like}[/b]"
            + ("\n[dim]same directory and environment[/dim]" if self.keep else ""))

    def extra_buttons(self) -> ComposeResult:
        yield Button("Enqueue held", id="save-held")

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="enqueue"):
            yield Static(self.heading() + "  [dim]enter saves · esc cancels[/dim]", id="title")
            with VerticalScroll(id="form-scroll"):
                with Grid(id="form"):
                    for name, label, placeholder in self.FIELDS:
                        yield Label(label)
                        yield Input(self.start_values.get(name, ""), placeholder=placeholder,
                                    id=f"f-{name}")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield from self.extra_buttons()
                yield Button(self.SAVE, id="save", variant="success")

    def on_mount(self) -> None:
        console_of(self).steady_inputs(self)
        self.query_one("#form-scroll").can_focus = False  # Tab goes field to field
        self.query_one("#error", Static).display = False
        self.query_one("#f-command", Input).focus()
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Only the fields scroll: the title, the error and the buttons stay in
        sight at any height (CSS cannot say "the screen less the rest")."""
        error = self.query_one("#error", Static)
        title = self.query_one("#title", Static)
        room = self.size.height - 4 - title.size.height - 4  # border, padding; buttons
        if error.display:
            room -= 1 + max(1, error.size.height)
        self.query_one("#form-scroll").styles.max_height = max(3, room)

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#f-{name}", Input).value for name, _, _ in self.FIELDS}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        elif event.button.id == "save-held":
            self.action_save(hold=True)
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self, hold: bool = False) -> None:
        """Check the form (the engine's rules), then save it on the write thread."""
        error = self.query_one("#error", Static)
        try:
            checked = self.checked(hold)
        except UsageError as exc:
            self._error(str(exc))
            return
        error.update("")
        error.display = False
        self._fit()
        self.run_worker(self._save(checked), exclusive=True, group="enqueue")

    def checked(self, hold: bool) -> Any:
        """What `_save` saves, or UsageError saying what is wrong."""
        return spec_from_form(self.values(), self.keep, hold)

    def _error(self, message: str) -> None:
        """The error under the form, scrolled into view (below the fold at 80x24)."""
        error = self.query_one("#error", Static)
        error.update(Text(f"⚠ {message}"))
        error.display = True
        self._fit()
        self.call_after_refresh(self._fit)  # again once the error's height is known

    async def _save(self, spec: JobSpec) -> None:
        console = console_of(self)
        try:
            job = await console.db.write(_enqueue, spec, create=True)
        except QueuectlError as exc:
            self._error(str(exc))
            return
        held = " (held: H releases it)" if job["state"] == "held" else ""
        console.notify(f"enqueued {job['id']}{held}: {one_line(job['command'], 60)}",
                       timeout=4, markup=False)
        console.request_refresh()
        self.dismiss(None)
