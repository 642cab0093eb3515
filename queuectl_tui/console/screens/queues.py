"""Queues: one row per named queue; pause, resume, limit, and jump to its jobs.

Rows are keyed by queue name and updated cell by cell (keyed_table.py).
"""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widgets import Static

from queuectl_tui.console import reads
from queuectl_tui.console.formatting import span
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.screens.keyed_table import KeyedTableView
from queuectl_tui.console.screens.edit_value import EditValueDialog
from queuectl_tui.console.widgets.repaint import show
from queuectl_tui.engine import Queue, parse_queue_limit

SPARK = " ▁▂▃▄▅▆▇█"
# The name sized to the longest (None): it is what `queue` commands take.
# RATE: starts used of allowed in the current window, and when the next may start.
COLUMNS = (("name", "QUEUE", None), ("state", "STATE", 7), ("running", "RUNNING", 7),
           ("per_key", "PER KEY", 7), ("starts", "RATE", 21),
           ("waiting", "WAITING", 9), ("done", "DONE", 9), ("dead", "DEAD", 5),
           ("cancelled", "CANCELLED", 9), ("rate", "/MIN", 5), ("spark", "LAST 2 MIN", 12))


def sparkline(counts: list[int]) -> str:
    top = max(counts, default=0)
    if not top:
        return "·" * len(counts)
    return "".join(SPARK[min(8, -(-n * 8 // top))] if n else "·" for n in counts)


def wait_text(seconds: float) -> str:
    """How soon the next start is allowed, short enough for the RATE column:
    "0.4s" (a 1s window's waits are short), "64s", "2m05s"."""
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    return f"{seconds:.0f}s" if seconds < 99.5 else span(seconds)


def rate_text(rate: dict[str, Any] | None) -> Text:
    """A queue's rate as used/allowed in the current window (per key: the busiest
    key's) and, when it is used up, when the next start is allowed:
    "2/3 per 1s", "3/3 per 1s, next 0.4s", "-" (no rate)."""
    if not rate:
        return Text("-", style="dim")
    period = rate["rate"].partition("/")[2].partition(" ")[0]  # "100/1m per key" -> "1m"
    text = f"{rate['used']}/{rate['limit']} per {period}" + (" per key" if rate["per_key"]
                                                            else "")
    if rate["next_start_in"] is not None:
        return Text(f"{text}, next {wait_text(rate['next_start_in'])}", style="#ffaf00",
                    justify="left")
    return Text(text, justify="left")


def queue_cells(q: dict[str, Any]) -> dict[str, Any]:
    counts = q["counts"]
    limit = q["limit"]
    return {
        "name": q["name"],
        "state": Text("paused", style="bold #ffaf00", justify="left") if q["paused"]
        else Text("active"),
        "running": f"{q['running']}/{limit}" if limit else str(q["running"]),
        "per_key": str(q["per_key_limit"]) if q.get("per_key_limit") else "-",
        "starts": rate_text(q.get("rate")),
        "waiting": f"{counts.get('pending', 0) + counts.get('failed', 0):,}",
        "done": f"{counts.get('completed', 0):,}",
        "dead": Text(f"{counts.get('dead', 0):,}",
                     style="#ff875f" if counts.get("dead") else "", justify="left"),
        "cancelled": f"{counts.get('cancelled', 0):,}",
        "rate": f"{q['finished_last_minute']:,}",
        "spark": Text(sparkline(q.get("activity", [])), style="#5fafff", justify="left"),
    }


class QueuesScreen(KeyedTableView):
    VIEW = "queues"
    COLUMNS = COLUMNS
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/resume"),
        Binding("l", "limit", "Limit"),
    ]

    # ------------------------------------------------------------ refresh

    def loader(self) -> Callable[[Queue], Any]:
        found = self.console.db.slow_results.get("queue-counts")
        per_queue = None if found is None else found[0]
        summary = self.console.summary
        header = summary.counts if summary is not None and summary.counted else None
        inline = not self.console.db.threaded
        return lambda queue: reads.queue_rows(queue, per_queue, header, count_here=inline)

    def apply(self, result: reads.QueueRows, summary: Summary) -> None:
        if (result.per_queue_needed or not result.counted) and self.console.db.threaded:
            # Per-queue counts scan every job: read on the slow thread, at most
            # every 5 s, and shown when they come.
            self.console.slow_read("queue-counts", Queue.counts_by_queue, 5.0)
        found = result.rows
        self.show_rows(found, queue_cells)
        paused = sum(q["paused"] for q in found)
        show(self.query_one("#status", Static), 
            f"[b]{len(found)} queue{'s' if len(found) != 1 else ''}[/b]"
            + (f", {paused} paused" if paused else "")
            + ("" if result.counted else "  [dim]counting jobs…[/dim]")
            + "  [dim]p pause/resume · l limit · enter shows its jobs · "
              "queue:NAME filters Jobs and DLQ[/dim]")

    # ------------------------------------------------------------ keys

    @work(group="action")  # awaits the database: off the message loop
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
        check=parse_queue_limit,
        save=lambda queue, text: queue.queue_set(name, max_running=parse_queue_limit(text)),
        done=lambda row: f"{name}: " + (f"at most {row['limit']} at once" if row["limit"]
                                        else "no limit"))
