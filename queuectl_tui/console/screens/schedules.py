"""Schedules: every recurring job with its expression, zone, next and last run.

Keys: p pauses or resumes the selected schedule, r runs it now (one job outside
its ticks), enter opens the jobs it made in Jobs (filter `schedule:NAME`).
Rows are keyed by schedule name and updated cell by cell (keyed_table.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widgets import Static

from queuectl_tui.clock import parse_iso
from queuectl_tui.console import reads
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.formatting import ago, state_text, until
from queuectl_tui.console.screens.keyed_table import KeyedTableView
from queuectl_tui.console.widgets.repaint import show
from queuectl_tui.engine import Queue, pause_schedule, run_schedule_now
from queuectl_tui.safe_text import printable

# Names and expressions sized to their longest (None): the name is what
# `schedule` commands take, and a six-field expression (seconds first) cut to
# five reads as another schedule.
COLUMNS = (("name", "SCHEDULE", None), ("cron", "CRON", None), ("tz", "ZONE", 16),
           ("next", "NEXT RUN (ITS ZONE)", 21), ("last", "LAST RUN", 10),
           ("outcome", "OUTCOME", 9), ("command", "COMMAND", 20))


def _local(stamp: str | None, tz: str, now: float) -> str:
    """'11-25 02:30 in 5h02m': the wall time in the schedule's zone, and how soon."""
    if stamp is None:
        return "never"
    ts = parse_iso(stamp)
    try:
        wall = datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%m-%d %H:%M")
    except (KeyError, ValueError, OSError):  # a zone this host lacks
        wall = stamp[5:16].replace("T", " ") + "Z"
    return f"{wall} {until(ts, now)}"


def schedule_cells(s: dict[str, Any], now: float) -> dict[str, Any]:
    last = None if s["last_run_at"] is None else parse_iso(s["last_run_at"])
    outcome = s["last_job_state"] or ("gone" if s["last_job_id"] else None)
    return {
        "name": s["name"],
        "cron": s["cron"],
        "tz": s["tz"],
        "next": Text("paused", style="bold #ffaf00", justify="left") if s["paused"]
        else _local(s["next_run_at"], s["tz"], now),
        "last": ago(last, now) or "-",
        "outcome": Text(outcome or "-", style=state_text(outcome).style, justify="left"),
        "command": printable(s["command"]).replace("\n", " "),
    }


class SchedulesScreen(KeyedTableView):
    VIEW = "schedules"
    COLUMNS = COLUMNS
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/resume"),
        Binding("r", "run_now", "Run now"),
    ]

    # ------------------------------------------------------------ refresh

    def loader(self) -> Callable[[Queue], Any]:
        return reads.schedule_rows

    def apply(self, found: list[dict[str, Any]], summary: Summary) -> None:
        self.show_rows(found, lambda s: schedule_cells(s, summary.now))
        paused = sum(s["paused"] for s in found)
        show(self.query_one("#status", Static), 
            (f"[b]{len(found)} schedule{'s' if len(found) != 1 else ''}[/b]"
             + (f", {paused} paused" if paused else "") if found else
             "[b]No schedules.[/b] Add one with: queuectl schedule add NAME --cron "
             "'0 3 * * *' 'COMMAND'")
            + "  [dim]p pause/resume · r run now · enter shows its jobs[/dim]")

    # ------------------------------------------------------------ keys

    @work(group="action")  # awaits the database: off the message loop
    async def action_toggle_pause(self) -> None:
        s = self.selected()
        if s is None:
            return
        pause = not s["paused"]
        await self.console.act(
            lambda queue: pause_schedule(queue, s["name"], pause),
            done=(f"paused {s['name']}: no ticks fire until resumed" if pause
                  else f"resumed {s['name']}: it fires from its next tick"))

    @work(group="action")  # awaits the database: off the message loop
    async def action_run_now(self) -> None:
        s = self.selected()
        if s is None:
            return
        job = await self.console.act(lambda queue: run_schedule_now(queue, s["name"]),
                                     create=True)
        if job is not None:
            self.console.notify(f"enqueued {job['id']}", timeout=3)

    def action_open_jobs(self) -> None:
        s = self.selected()
        if s is not None:
            self.console.show_jobs_filtered(f"schedule:{s['name']}")
