"""A view that is a long list: Jobs, DLQ and History share the filter, table and status line.

The table holds only what is on screen (see `WindowTable`); the filter line
turns text into a query (see `filters`); the status line says what is shown.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from queuectl_tui.console.reads import Summary
from queuectl_tui.console.filters import FilterError
from queuectl_tui.console.screens.base import ViewScreen
from queuectl_tui.console.trail import Place
from queuectl_tui.console.widgets.repaint import show
from queuectl_tui.console.widgets.window_table import Column, WindowTable
from queuectl_tui.engine import Queue, Window


class ListScreen(ViewScreen):
    """Subclasses give columns, a row renderer, a filter parser and a window fetcher."""

    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]
    FILTER_HINT = "filter"
    NOUN = "rows"

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.query_obj: Any = self.parse_filter("")
        # Rows an action just took away: a refresh read before the action committed
        # must not bring them back. None: the action is still running.
        self.hidden: set[str] = set()
        self.hidden_until: int | None = 0

    # ------------------------------------------------------------ subclass hooks

    def columns(self) -> list[Column]:
        raise NotImplementedError

    def render_row(self, row: dict[str, Any]) -> list[Any]:
        raise NotImplementedError

    def row_id(self, row: dict[str, Any]) -> str:
        return str(row["seq"])

    def parse_filter(self, text: str) -> Any:
        raise NotImplementedError

    def effective_query(self) -> Any:
        return self.query_obj

    def fetch(self, query: Any, anchor: Any, before: int, after: int) -> Callable[[Queue], Window]:
        raise NotImplementedError

    def empty_message(self, summary: Summary) -> str:
        return f"No {self.NOUN}."

    def total_text(self, summary: Summary) -> str:
        return ""

    def extra_load(self, queue: Queue) -> dict[str, Any]:
        return {}

    def apply_extra(self, data: dict[str, Any], summary: Summary) -> None:
        pass

    def compose_above(self) -> ComposeResult:
        yield from ()

    def compose_below(self) -> ComposeResult:
        yield from ()

    # ------------------------------------------------------------ layout

    def compose_body(self) -> ComposeResult:
        yield from self.compose_above()
        yield Input(placeholder=self.FILTER_HINT, id="filter")
        yield Static("", id="filter-error")
        yield WindowTable(self.columns(), self.render_row, self._key_of, self.row_id,
                          id="table")
        yield Static("", id="empty")
        yield Static("", id="status")
        yield from self.compose_below()

    def on_mount(self) -> None:
        self._show_filter_box(False)
        self.query_one("#filter-error", Static).display = False
        self.query_one("#filter", Input).value = self.filter_text
        self.query_one("#empty", Static).display = False
        self.console.steady_inputs(self)
        self.table.focus()

    @property
    def table(self) -> WindowTable:
        return self.query_one("#table", WindowTable)

    def _key_of(self, row: dict[str, Any]) -> tuple:
        return self.effective_query().key_of(row)

    # ------------------------------------------------------------ refresh

    def loader(self) -> Callable[[Queue], Any]:
        anchor, before, after = self.table.request()
        fetch = self.fetch(self.effective_query(), anchor, before, after)
        extra = self.extra_load

        def load(queue: Queue) -> dict[str, Any]:
            return {"window": fetch(queue), **extra(queue)}

        return load

    def apply(self, data: dict[str, Any], summary: Summary) -> None:
        table = self.table
        window = data["window"]
        if self.hidden:
            if self.hidden_until is not None and self.console.applying > self.hidden_until:
                self.hidden.clear()  # read after the action: the database has the truth
            else:
                window.rows = [r for r in window.rows if self.row_id(r) not in self.hidden]
                window.at = min(window.at, len(window.rows))
        table.show_window(window)
        empty = self.query_one("#empty", Static)
        nothing = not table.buffer
        empty.display = nothing
        table.display = not nothing
        if nothing:
            empty.update(self.empty_message(summary))
        elif self.focused is None and self.screen.is_current:
            table.focus()  # hidden while empty, it lost the focus: keys go to it again
        self.apply_extra(data, summary)
        self.update_status(summary)

    def update_status(self, summary: Summary | None, error: str | None = None) -> None:
        status = Text(no_wrap=True, overflow="ellipsis")  # a cut hint ends in "…"
        if summary is not None:
            status.append(self.total_text(summary), style="bold")
        if self.filter_text:
            status.append("  ·  filter ", style="dim")
            status.append(self.filter_text, style="bold #ffd75f")
            back = self.console.trail.last_to == self.VIEW
            status.append("  (esc goes back)" if back else "  (esc clears)", style="dim")
        if error:
            status.append(f"  ⚠ {error}", style="bold #ff5f5f")
        extra = self.status_extra()
        if extra:
            status.append(("  ·  " if status.plain else "") + extra, style="dim")
        show(self.query_one("#status", Static), status)

    def status_extra(self) -> str:
        return ""

    def on_window_table_window_needed(self, event: WindowTable.WindowNeeded) -> None:
        event.stop()
        self.console.request_refresh(summary=False)

    # ------------------------------------------------------------ filter

    def action_filter(self) -> None:
        box = self._show_filter_box(True)
        box.value = self.filter_text
        box.focus()

    def _show_filter_box(self, shown: bool) -> Input:
        """Show or hide the filter line. Hidden, it cannot take the focus: when a
        dialog closed over an empty list, Textual gave the focus to the hidden box
        and every key after it (1-7, n, ?) was typed into it, unseen."""
        box = self.query_one("#filter", Input)
        box.display = shown
        box.can_focus = shown
        return box

    def set_filter(self, text: str) -> bool:
        try:
            query = self.parse_filter(text)
        except FilterError as exc:
            self._filter_error(str(exc))
            return False
        self._filter_error(None)
        self.filter_text, self.query_obj = text.strip(), query
        if not self.is_mounted:  # opened from another view: on_mount shows it
            return True
        self.query_one("#filter", Input).value = self.filter_text
        self.table.reset()
        self.update_status(self.console.summary)
        return True

    def _filter_error(self, error: str | None) -> None:
        """What the filter did not understand, on its own lines under the box
        (wrapped: the status line cut it off at 80 columns)."""
        if not self.is_mounted:
            return
        box = self.query_one("#filter-error", Static)
        box.display = error is not None
        box.update(Text(f"⚠ {error}" if error else "", style="bold #ff5f5f"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "filter":
            return
        event.stop()
        if self.set_filter(event.value):
            self._show_filter_box(False)
            self.table.focus()

    # ------------------------------------------------------------ rows that leave

    def forget_rows(self, row_ids: set[str] | None) -> None:
        """Rows leave the view at once (None: every row shown)."""
        if row_ids is None:
            row_ids = {self.row_id(r) for r in self.table.buffer}
        self.hidden |= row_ids
        self.hidden_until = None
        self.table.remove_ids(row_ids)

    async def act_removing(self, row_ids: set[str] | None, call: Any,
                           done: str | None = None) -> Any:
        """Run an action whose rows leave this view; they stay gone while it runs."""
        self.forget_rows(row_ids)
        try:
            return await self.console.act(call, done=done)
        finally:
            self.hidden_until = self.console.refresh_count

    def on_window_table_chosen(self, event: WindowTable.Chosen) -> None:
        """Enter on a row: show its job, with detail and output, in Jobs."""
        event.stop()
        self.open_in_jobs(event.row.get("job_id") or event.row["id"])

    def open_in_jobs(self, job_id: str) -> None:
        self.console.show_jobs_filtered(f"id:{job_id}")

    def where(self) -> Place:
        current = self.table.current
        return Place(self.VIEW, self.filter_text, self.state_name(),
                     None if current is None else self._key_of(current))

    def state_name(self) -> str | None:
        return None

    def return_to(self, place: Place) -> None:
        if place.state is not None:
            self.show_state(place.state)
        self.set_filter(place.filter_text)
        if place.anchor is not None:
            self.table.reset(place.anchor)  # the cursor lands on the row it was on

    def show_state(self, name: str) -> None:
        """Jobs' state tabs; the other lists have none."""

    def action_clear_filter(self) -> None:
        """Esc: undo an edit in the filter box; else back after a jump to this
        view; else clear the filter."""
        box = self.query_one("#filter", Input)
        editing = box.display and box.has_focus
        if editing and box.value.strip() != self.filter_text:
            box.value = self.filter_text  # first Esc undoes the edit
        elif not editing and self.console.trail.last_to == self.VIEW:
            self._filter_error(None)
            self.console.action_back()
            return
        elif self.filter_text:
            self.set_filter("")
        self._filter_error(None)
        self._show_filter_box(False)
        self.table.focus()
