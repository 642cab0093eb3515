"""What every view shares: the header strip, the view tabs, the footer, problems.

A view screen says what it needs from the database (`loader`, run on the
database thread) and shows what came back (`apply`, on the UI thread). The
app drives the refresh; a view never touches the database itself, and sees
the app only as a `ConsoleContext` (context.py).
"""

from __future__ import annotations

from typing import Any, Callable

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Static, Tabs

from queuectl_tui.console.context import ConsoleContext, console_of
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.trail import Place
from queuectl_tui.console.widgets.footer import Footer
from queuectl_tui.console.widgets.status_strip import StatusStrip
from queuectl_tui.console.widgets.view_tabs import ViewTabs
from queuectl_tui.engine import Queue


class ViewScreen(Screen):
    """Base of the eight views (Jobs, Workers, DLQ, History, Config, Queues, Schedules,
    Trends)."""

    VIEW = ""
    BINDINGS = [Binding("escape", "back_here", "Back", show=False)]

    @property
    def console(self) -> ConsoleContext:
        return console_of(self)

    def compose(self) -> ComposeResult:
        yield StatusStrip(id="strip", read_only=self.console.read_only)
        yield ViewTabs(self.VIEW)
        with Container(id="body"):
            yield from self.compose_body()
        yield Static("", id="notice")  # faults: the whole cause, stale since, waits
        yield Static("", id="problem")
        # Compact: at 80 columns the keys that matter everywhere (? Help, q Quit)
        # still fit after the view's own; bulk keys are in the help and the hint line.
        yield Footer(compact=True, show_command_palette=False)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A read-only console's writes are neither shown nor run (read_only.py);
        a view that overrides this asks here first."""
        return not self.console.refuses(action)

    # ------------------------------------------------------------ back after a jump

    def where(self) -> Place:
        """This view as it is now, to come back to (a mode keeps its own widgets,
        so a view other than the lists needs only its name)."""
        return Place(self.VIEW)

    def return_to(self, place: Place) -> None:
        """Show `place` again (called after switching to this view)."""

    def action_back_here(self) -> None:
        """Esc in the view a jump went to: back where it came from."""
        if self.console.trail.last_to == self.VIEW:
            self.console.action_back()

    # ------------------------------------------------------------ refresh protocol

    def loader(self) -> Callable[[Queue], Any] | None:
        """A function of the queue that reads what this view shows (database thread)."""
        return None

    def apply(self, data: Any, summary: Summary) -> None:
        """Show what `loader` returned (UI thread)."""

    def show_summary(self, summary: Summary | None, problem: str | None,
                     hint: str | None) -> None:
        self.query_one(StatusStrip).show(summary, problem)
        box = self.query_one("#problem", Static)
        blocking = problem is not None and summary is None
        box.display = blocking
        body = self.query_one("#body")
        body.display = not blocking
        body.set_class(problem is not None and summary is not None, "-stale")
        notice = self.query_one("#notice", Static)
        text = self.console.notice()
        notice.display = text is not None
        if text is not None:
            notice.update(text)
        if blocking:
            box.update(f"[b]The console cannot read the queue.[/b]\n\n{problem}\n\n"
                       f"{hint or ''}\n\nIt tries again every second; q quits.")

    def on_screen_suspend(self) -> None:
        self._left_with = self._style_inputs()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # Textual restyles every widget of a view it switches back to (60-150 ms
        # beside a busy pool, most of a view switch), in case what styles depend
        # on changed while it was away. The stylesheet and the theme are
        # re-applied by switch_mode itself when they changed, and this screen's
        # own widgets restyle as they change, hidden or not: so the restyle is
        # needed only for the first showing or after the app's focus changed.
        if getattr(self, "_left_with", None) == self._style_inputs():
            event.refresh_styles = False
        self.show_summary(self.console.summary, self.console.problem, self.console.hint)
        self.console.request_refresh(summary=False)

    def _style_inputs(self) -> tuple:
        return (self.app.theme, self.app.app_focus)

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if isinstance(event.tabs, ViewTabs):
            event.stop()
            if event.tab.id and event.tab.id != self.VIEW:
                self.console.switch_mode(event.tab.id)
