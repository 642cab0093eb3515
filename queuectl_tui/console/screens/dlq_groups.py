"""The DLQ by failure (`f`): one row per failure group, the dead jobs that
failed the same way (their signature: how the run ended and its last error
line made generic), with how many, when the last died and their queues.

`r` retries a group and `d` deletes it, each after a question that says how
many; enter lists the group's jobs (the DLQ under `group:ID`, esc comes back).
The rows are few (a DLQ of thousands is a handful of groups), so the table is
a plain DataTable, keyed by group id so a refresh keeps the cursor on its group.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from queuectl_tui.console.formatting import ago, one_line, plural
from queuectl_tui.console.widgets.window_table import cut
from queuectl_tui.engine import FailureGroup, failure_signature_shown
from queuectl_tui.safe_text import printable

COLUMNS = (("group", "GROUP", 8), ("count", "COUNT", 7), ("last", "LAST DIED", 9),
           ("queues", "QUEUES", 16), ("signature", "HOW THEY FAILED", None))
MOST_SHOWN = 200  # the largest groups; the status line says how many more there are
FIXED = sum(width + 2 for _, _, width in COLUMNS if width)  # cells before the signature


class GroupTable(DataTable):
    """The DLQ's failure groups, largest first."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "First", show=False),
        Binding("G", "scroll_bottom", "Last", show=False),
    ]

    DEFAULT_CSS = """
    GroupTable { height: 1fr; min-height: 4; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.groups: dict[str, FailureGroup] = {}
        self.total = 0  # groups the DLQ has (more than are shown past MOST_SHOWN)
        self._last: tuple[list[FailureGroup], float] | None = None  # shown again on a resize

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(Text(label, style="bold"), key=key, width=width)

    def show(self, found: list[FailureGroup], now: float, anchor: str | None = None) -> None:
        """Hold exactly the largest groups of `found`, the cursor staying on its
        group (or going to `anchor`'s)."""
        current = anchor or (self.selected().group if self.selected() else None)
        self.total = len(found)
        self._last = (found, now)
        shown = found[:MOST_SHOWN]
        # The signature gets the room left (the screen's, before the table is laid out).
        room = max(20, (self.size.width or self.app.size.width) - FIXED - 2)
        with self.app.batch_update():
            self.clear()
            self.groups = {}
            for g in shown:
                self.add_row(*group_cells(g, now, room), key=g.group)
                self.groups[g.group] = g
            if current in self.groups:
                self.move_cursor(row=self.get_row_index(current), animate=False)

    def on_resize(self) -> None:
        if self._last is not None:
            self.show(*self._last)

    def selected(self) -> FailureGroup | None:
        if not self.row_count or not self.groups:
            return None
        key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        return self.groups.get(key) if key is not None else None


def group_cells(g: FailureGroup, now: float, room: int) -> list[Any]:
    signature = Text(printable(one_line(failure_signature_shown(g.signature))),
                     style="#ff875f")
    return [Text(g.group, style="bold"), f"{g.count:,}",
            ago(g.last_seen, now) if g.last_seen else "-",
            cut(Text(", ".join(g.queues)), 16), cut(signature, room)]


def question(verb: str, g: FailureGroup) -> str:
    return f"{verb} the {plural(g.count, 'dead job')} of group {g.group}?"


def detail(g: FailureGroup, consequence: str) -> str:
    where = ", ".join(g.queues[:5]) + (" …" if len(g.queues) > 5 else "")
    return (f"{one_line(failure_signature_shown(g.signature), 200)}\n"
            f"queue{'s' if len(g.queues) != 1 else ''}: {where}\n\n{consequence}")


def status_text(table: GroupTable, dead: int | None) -> str:
    if not table.total:
        return ""
    more = f" (the {MOST_SHOWN} largest shown)" if table.total > MOST_SHOWN else ""
    of = f" of {dead:,} dead" if dead is not None else ""
    return f"{plural(table.total, 'failure group')}{of}{more}"
