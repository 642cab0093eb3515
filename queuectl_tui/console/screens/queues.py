"""Queues: one row per named queue; pause, resume, limit, and jump to its jobs.

The table is updated cell by cell (rows keyed by queue name), so fifty queues
refresh as cheaply as one and the cursor stays where it is.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from queuectl_tui.console import data
from queuectl_tui.console.data import Summary
from queuectl_tui.console.screens.base import ViewScreen
from queuectl_tui.console.screens.edit_value import EditValueDialog
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.queues import parse_limit

SPARK = " ▁▂▃▄▅▆▇█"
COLUMNS = (("name", "QUEUE", 16), ("state", "STATE", 7), ("running", "RUNNING", 8),
           ("waiting", "WAITING", 9), ("done", "DONE", 10), ("dead", "DEAD", 7),
           ("cancelled", "CANCELLED", 9), ("rate", "/MIN", 6), ("spark", "LAST 2 MIN", 12))


def sparkline(counts: list[int]) -> str:
    top = max(counts, default=0)
    if not top:
        return "·" * len(counts)
    return "".join(SPARK[min(8, -(-n * 8 // top))] if n else "·" for n in counts)


def queue_cells(q: dict[str, Any]) -> dict[str, Any]:
    counts = q["counts"]
    limit = q["limit"]
    return {
        "name": q["name"],
        "state": Text("paused", style="bold #ffaf00", justify="left") if q["paused"]
        else Text("active"),
        "running": f"{q['running']}/{limit}" if limit else str(q["running"]),
        "waiting": f"{counts.get('pending', 0) + counts.get('failed', 0):,}",
        "done": f"{counts.get('completed', 0):,}",
        "dead": Text(f"{counts.get('dead', 0):,}",
                     style="#ff875f" if counts.get("dead") else "", justify="left"),
        "cancelled": f"{counts.get('cancelled', 0):,}",
        "rate": f"{q['finished_last_minute']:,}",
        "spark": Text(sparkline(q.get("activity", [])), style="#5fafff", justify="left"),
    }


class QueuesScreen(ViewScreen):
    VIEW = "queues"
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/resume"),
        Binding("l", "limit", "Limit"),
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
        yield DataTable(id="queues-table", cursor_type="row")
        yield Static("", id="status")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label, width in COLUMNS:
            table.add_column(Text(label, style="bold"), key=key, width=width)
        table.focus()

    # ------------------------------------------------------------ refresh

    def loader(self) -> Callable[[Queue], Any]:
        return data.queue_rows

    def apply(self, found: list[dict[str, Any]], summary: Summary) -> None:
        table = self.query_one(DataTable)
        wanted = [q["name"] for q in found]
        with self.app.batch_update():
            for name in [n for n in self.rows if n not in wanted]:
                table.remove_row(name)
                del self.rows[name]
            for q in found:
                cells = queue_cells(q)
                if q["name"] not in self.rows:
                    table.add_row(*[cells[key] for key, _, _ in COLUMNS], key=q["name"])
                else:
                    for key, _, _ in COLUMNS:
                        if table.get_cell(q["name"], key) != cells[key]:
                            table.update_cell(q["name"], key, cells[key])
                self.rows[q["name"]] = q
            if list(self.rows) != wanted:  # a new queue sorts in by name
                table.sort("name", key=lambda name: str(name))
        paused = sum(q["paused"] for q in found)
        self.query_one("#status", Static).update(
            f"[b]{len(found)} queue{'s' if len(found) != 1 else ''}[/b]"
            + (f", {paused} paused" if paused else "")
            + "  [dim]p pause/resume · l limit · enter shows its jobs · "
              "queue:NAME filters Jobs and DLQ[/dim]")

    # ------------------------------------------------------------ keys

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

    async def action_toggle_pause(self) -> None:
        q = self.selected()
        if q is None:
            return
        pause = not q["paused"]
        await self.console.act(
            lambda queue: queue.queue_set(q["name"], paused=pause),
            done=(f"paused {q['name']}: running jobs finish, nothing new starts" if pause
                  else f"resumed {q['name']}"))

    def action_limit(self) -> None:
        q = self.selected()
        if q is not None:
            self.console.push_screen(limit_dialog(q["name"], q["limit"]))

    def action_open_jobs(self) -> None:
        q = self.selected()
        if q is not None:
            self.console.show_jobs_filtered(f"queue:{q['name']}")


def limit_dialog(name: str, limit: int | None) -> EditValueDialog:
    return EditValueDialog(
        f"Limit for {name}", "at most this many of its jobs run at once, across every "
        "worker and host; 0 or none: no limit", str(limit or 0),
        check=parse_limit,
        save=lambda queue, text: queue.queue_set(name, max_running=parse_limit(text)),
        done=lambda row: f"{name}: " + (f"at most {row['limit']} at once" if row["limit"]
                                        else "no limit"))
