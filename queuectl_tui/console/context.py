"""What a view, a dialog or the command palette may ask of the console around it.

Textual hands every screen its app (`self.app`). The screens see it through
`ConsoleContext`, never as the concrete `ConsoleApp`: the app imports the
screens and hands them this much (attributes down), and nothing below the app
imports `app.py` back. The interface names all a screen uses: the database
threads, the last summary and what is wrong, the refresh, operator actions,
slow reads, jumps between views and the trail back, and the few of Textual's
own app methods the screens call through the same handle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from rich.text import Text
    from textual.dom import DOMNode
    from textual.screen import Screen

    from queuectl_tui.console.database import Database
    from queuectl_tui.console.reads import Summary
    from queuectl_tui.console.trail import Trail

T = TypeVar("T")


class ConsoleContext(Protocol):
    """The console as its screens see it (`ConsoleApp` provides it)."""

    db: Database  # the read, write and slow-read threads
    summary: Summary | None  # the header's last counts (None: none read yet)
    problem: str | None  # why the last refresh failed (None: it did not)
    hint: str | None  # what to do about `problem`
    trail: Trail  # where jumps came from
    applying: int  # the number of the refresh being shown
    refresh_count: int  # refreshes started so far
    read_only: bool  # no key changes anything (read_only.py)

    @property
    def target(self) -> str:
        """The database path or URL the console reads."""

    def refuses(self, action: str) -> bool:
        """The action would change something and this console is read-only."""

    def notice(self) -> Text | None:
        """The notice above the footer (writes waiting, why the rows are stale)."""

    def request_refresh(self, view: bool = True, summary: bool = True) -> None:
        """Read again soon (the view's rows, the header, or both)."""

    def act(self, fn: Callable[..., T], *args: Any, done: str | None = None,
            create: bool = False, read: bool = False) -> Awaitable[T | None]:
        """Run an operator action on a database thread; a refusal becomes a notice."""

    def slow_read(self, name: str, fn: Callable[..., Any], max_age: float) -> Any:
        """The last value of a slow read, read again when older than `max_age`."""

    def jump(self, mode: str, filter_text: str, state: str | None = None) -> None:
        """Show a view under a filter, remembering the view left."""

    def show_jobs_filtered(self, text: str) -> None:
        """Jobs, every state, under this filter."""

    def action_back(self) -> None:
        """Back to where the last jump came from."""

    def action_view(self, name: str) -> None:
        """Switch to a view by its mode name."""

    def leaving(self, view: Screen) -> bool:
        """The console quitting or `view` closing: nowhere to show a read."""

    def steady_inputs(self, root: DOMNode) -> None:
        """Keep text cursors from blinking in pictures."""

    # Textual's own, called through the same handle.

    def push_screen(self, screen: Any, callback: Any = None,
                    wait_for_dismiss: bool = False) -> Any: ...

    def switch_mode(self, mode: str) -> Any: ...

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...


def console_of(node: DOMNode) -> ConsoleContext:
    """The console a screen or widget is mounted in."""
    return cast(ConsoleContext, node.app)
