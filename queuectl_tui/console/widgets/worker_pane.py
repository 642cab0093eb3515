"""One pane per worker process: who it is, what it runs, how it is doing."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from queuectl_tui.clock import parse_iso
from queuectl_tui.console.formatting import ago, span, state_text
from queuectl_tui.engine import format_size
from queuectl_tui.safe_text import printable


def worker_table(w: dict[str, Any], now: float) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold #87afd7", no_wrap=True)
    grid.add_column(overflow="ellipsis", no_wrap=True)
    grid.add_row("state", state_text(w["state"]))
    grid.add_row("pid", Text(f"{w['pid']} on {printable(w['host'])}"))
    if w.get("job_id"):
        running = ""
        if w.get("job_started_at"):
            running = f" for {span(now - parse_iso(w['job_started_at']))}"
        grid.add_row("job", Text(f"{printable(w['job_id'])}{running}"))
    else:
        grid.add_row("job", Text("-", style="dim"))
    grid.add_row("done", Text(f"{w['jobs_done']} ok, {w['jobs_failed']} failed"))
    beat = Text(f"{span(w['heartbeat_age'])} ago")
    if w["state"] == "gone":
        beat.stylize("bold #ff5f5f")
    grid.add_row("heartbeat", beat)
    grid.add_row("up", Text(ago(parse_iso(w["started_at"]), now).replace(" ago", "")))
    return grid


def pools_table(pools: list[dict[str, Any]]) -> Table:
    """One row per live pool: what it can give at once, what its running jobs
    hold and what is free (cpus, memory, GPU devices), as Queue.pools reads it."""
    grid = Table(box=None, padding=(0, 2, 0, 0), show_edge=False, pad_edge=False,
                 header_style="bold #87afd7")
    for heading in ("POOL", "WORKERS", "CPUS", "MEMORY", "GPUS"):
        grid.add_column(heading, no_wrap=True, overflow="ellipsis")
    for p in pools:
        cap, used, free = p["capacity"], p["used"], p["free"]
        grid.add_row(Text(printable(p["pool"])), Text(str(p["workers"])),
                     Text(share(used["cpus"], cap and cap["cpus"], free and free["cpus"],
                                lambda n: f"{n:g}")),
                     Text(share(used["mem"], cap and cap["mem"], free and free["mem"],
                                format_size)),
                     Text(devices_text(used["gpus"], cap and cap["gpus"],
                                       free and free["gpus"])))
    return grid


def share(used: float, capacity: float | None, free: float | None, shown: Any) -> str:
    """"2/4 used, 2 free"; a pool that stated no capacity: "2 used, no limit"."""
    if capacity is None or free is None:
        return f"{shown(used)} used, no limit"
    return f"{shown(used)}/{shown(capacity)} used, {shown(max(free, 0))} free"


def devices_text(used: list[str], capacity: list[str] | None, free: list[str] | None) -> str:
    """GPUs counted as the other columns are, with their device ids:
    "1/2 used (0), 1 free (1)"; "none" for a pool without GPUs."""
    if capacity is not None and not capacity and not used:
        return "none"

    def ids(devices: list[str]) -> str:
        return f" ({printable(','.join(devices))})" if devices else ""

    if capacity is None or free is None:
        return f"{len(used)} used{ids(used)}, no limit"
    return f"{len(used)}/{len(capacity)} used{ids(used)}, {len(free)} free{ids(free)}"


class WorkerPane(Static):
    """A bordered card; the selected one is highlighted."""

    def __init__(self, worker: dict[str, Any], now: float) -> None:
        super().__init__(classes="worker-pane")
        self.worker = worker
        self.show(worker, now)

    def show(self, worker: dict[str, Any], now: float) -> None:
        self.worker = worker
        self.border_title = Text(printable(worker["id"]))  # a Text: never markup
        self.set_class(worker["state"] in ("gone", "stopped"), "-down")
        self.update(worker_table(worker, now))
