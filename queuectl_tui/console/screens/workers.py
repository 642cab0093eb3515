"""Workers: one pane per worker process; start, stop and scale the pool from here.

Workers started here are ordinary supervised pools in their own session
(`spawn_detached`): they keep running after the console quits, and
`queuectl worker stop` reaches them like any other.
"""

from __future__ import annotations

from typing import Any, Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.widgets import Static

from queuectl_tui.console import reads
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.formatting import plural
from queuectl_tui.console.screens.base import ViewScreen
from queuectl_tui.console.screens.confirm import ConfirmDialog
from queuectl_tui.console.widgets.worker_pane import WorkerPane, pools_table
from queuectl_tui.console.widgets.repaint import show
from queuectl_tui.engine import LIVE_STATES, Queue


def start_workers(queue: Queue, count: int) -> int:
    from queuectl_tui.workers.supervisor import spawn_detached
    return spawn_detached(queue.opened.target, count, queue.opened.pool_log).pid


class WorkersScreen(ViewScreen):
    VIEW = "workers"
    BINDINGS = [
        Binding("j,down,l,right", "select(1)", "Next", show=False),
        Binding("k,up,h,left", "select(-1)", "Previous", show=False),
        Binding("s,plus", "start", "Start one"),
        Binding("x", "stop", "Stop selected"),
        Binding("minus", "scale_down", "Scale down"),
        Binding("X", "stop_all", "Stop all"),
        Binding("a", "show_stopped(True)", "Show stopped"),
        Binding("a", "show_stopped(False)", "Hide stopped"),
        Binding("enter", "open_job", "Its job", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.worker_rows: list[dict[str, Any]] = []
        self.selected: str | None = None
        self.include_stopped = False
        self.panes: dict[str, WorkerPane] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="pools")
        with VerticalScroll(id="workers-scroll"):
            yield Grid(id="worker-grid")
        yield Static("", id="empty")
        yield Static("", id="status")

    def on_mount(self) -> None:
        self.query_one("#empty", Static).display = False
        self.query_one("#pools", Static).display = False

    def on_resize(self) -> None:
        # As many 40-column panes side by side as fit: 3 at 120 columns, 2 at 80.
        self.query_one("#worker-grid", Grid).styles.grid_size_columns = \
            max(1, self.size.width // 40)

    # ------------------------------------------------------------ refresh

    def loader(self) -> Callable[[Queue], Any]:
        include = self.include_stopped
        return lambda queue: reads.worker_rows(queue, include)

    def apply(self, result: reads.WorkerRows, summary: Summary) -> None:
        workers = self.worker_rows = result.workers
        pools = self.query_one("#pools", Static)
        pools.display = bool(result.pools)
        if result.pools:
            # its height follows the number of pools: laid out again when they change
            show(pools, pools_table(result.pools), key=repr(result.pools), fixed_size=False)
        grid = self.query_one("#worker-grid", Grid)
        panes = self.panes  # kept here: mount and remove finish later than this method
        wanted = [w["id"] for w in workers]
        with self.app.batch_update():
            for wid in [wid for wid in panes if wid not in wanted]:
                panes.pop(wid).remove()
            for w in workers:
                if w["id"] in panes:
                    panes[w["id"]].show(w, summary.now)
                else:
                    panes[w["id"]] = WorkerPane(w, summary.now)
                    grid.mount(panes[w["id"]])
            if self.selected not in wanted:
                self.selected = wanted[0] if wanted else None
            self._highlight()
        empty = self.query_one("#empty", Static)
        empty.display = not workers
        self.query_one("#workers-scroll").display = bool(workers)
        if not workers:
            empty.update("No workers are running, so nothing gets done.\n\n"
                         "Press [b]s[/b] to start one here (it keeps running after you quit), "
                         "or from a shell:\n"
                         f"  queuectl --db {self.console.target} worker start --count 2")
        live = sum(1 for w in workers if w["state"] in LIVE_STATES)
        # A stopping worker that still runs its job is busy until the job ends.
        busy = sum(1 for w in workers
                   if w["state"] == "busy" or (w["state"] == "stopping" and w["job_id"]))
        show(self.query_one("#status", Static), 
            f"[b]{live} live[/b], {busy} busy"
            + (f", {len(workers) - live} down" if len(workers) > live else "")
            + "  [dim]s/+ start one · x stop selected · - scale down · X stop all"
            + f" · a {'hide' if self.include_stopped else 'show'} stopped[/dim]")

    def _highlight(self) -> None:
        for pane in self.panes.values():
            pane.set_class(pane.worker["id"] == self.selected, "-selected")
            if pane.worker["id"] == self.selected:
                pane.scroll_visible(animate=False)

    # ------------------------------------------------------------ keys

    def action_select(self, step: int) -> None:
        ids = [w["id"] for w in self.worker_rows]
        if not ids:
            return
        index = ids.index(self.selected) if self.selected in ids else 0
        self.selected = ids[(index + step) % len(ids)]
        self._highlight()

    def on_click(self, event: Any) -> None:
        pane = event.widget
        while pane is not None and not isinstance(pane, WorkerPane):
            pane = pane.parent
        if isinstance(pane, WorkerPane):
            self.selected = pane.worker["id"]
            self._highlight()

    @work(group="action")  # awaits the database: off the message loop
    async def action_start(self) -> None:
        pid = await self.console.act(start_workers, 1)
        if pid is not None:
            self.notify(f"started a worker pool of 1 (supervisor pid {pid}); "
                        "it shows here within a second", timeout=4)

    def _live(self) -> list[dict[str, Any]]:
        return [w for w in self.worker_rows if w["state"] in ("idle", "busy")]

    async def _stop(self, ids: list[str]) -> None:
        stopped = await self.console.act(lambda q: q.stop_workers(ids))
        if stopped is not None:
            self.notify(f"asked {', '.join(stopped) or 'no worker'} to stop after the "
                        "current job" if stopped else "that worker is not running", timeout=4)

    @work(group="action")  # awaits the database: off the message loop
    async def action_stop(self) -> None:
        chosen = next((w for w in self.worker_rows if w["id"] == self.selected), None)
        if chosen is None or chosen["state"] not in ("idle", "busy"):
            self.notify("select a running worker first (j/k)", severity="warning")
            return
        await self._stop([chosen["id"]])

    @work(group="action")  # awaits the database: off the message loop
    async def action_scale_down(self) -> None:
        live = self._live()
        if not live:
            self.notify("no running worker to stop", severity="warning")
            return
        idle = [w for w in live if w["state"] == "idle"]
        await self._stop([(idle or live)[-1]["id"]])

    def action_stop_all(self) -> None:
        live = self._live()
        if not live:
            self.notify("no running worker to stop", severity="warning")
            return

        async def answer(yes: bool | None) -> None:
            if yes:
                await self.console.act(lambda q: q.stop_workers(None),
                                       done=f"asked {plural(len(live), 'worker')} to stop")

        self.console.push_screen(ConfirmDialog(
            "Stop the only worker?" if len(live) == 1 else f"Stop all {len(live)} workers?",
            "Each finishes its current job first. Nothing runs until you start one again.",
            yes="Stop all"), answer)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`a` is one key with the footer naming what it will do: show or hide."""
        if action == "show_stopped":
            return parameters[0] != self.include_stopped
        return super().check_action(action, parameters)

    def action_show_stopped(self, shown: bool) -> None:
        self.include_stopped = shown
        self.refresh_bindings()
        self.console.request_refresh()

    def action_open_job(self) -> None:
        """Enter: the selected worker's job in Jobs (back with esc)."""
        chosen = next((w for w in self.worker_rows if w["id"] == self.selected), None)
        if chosen is None or not chosen.get("job_id"):
            self.notify("the selected worker runs no job now", timeout=3)
            return
        self.console.jump("jobs", f"id:{chosen['job_id']}", state="all")
