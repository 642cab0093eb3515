"""What Jobs and the DLQ share: marks, retry and delete of one, the marked, or all matching.

Single actions act on the row under the cursor. Bulk actions (Shift: `R`, `D`)
act on the marked rows, or, with nothing marked, on every job the filter and
state tab match (not only the rows on screen), and always ask first, with No
as the default answer.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual import work
from textual.binding import Binding

from queuectl_tui.console import filters
from queuectl_tui.console.formatting import one_line
from queuectl_tui.console.screens.confirm import ConfirmDialog
from queuectl_tui.console.screens.log_viewer import LogViewerScreen
from queuectl_tui.console.screens.listing import ListScreen
from queuectl_tui.engine import views
from queuectl_tui.engine.models import STATES
from queuectl_tui.engine.queue import Queue, RunAgain
from queuectl_tui.engine.views import JobQuery

DEAD = ("dead",)
NOT_RUNNING = tuple(s for s in STATES if s != "processing")  # what delete may touch


def retry_matching(queue: Queue, query: JobQuery) -> RunAgain:
    if query.states == DEAD and not query.has_text:
        return queue.retry_all_dead()
    return queue.retry_dead(views.job_ids_matching(query))


def retried_said(states: dict[str, str]) -> str:
    """Where retried jobs went, as the engine moved them (`RunAgain.states`):
    pending, or blocked while a job they wait for has not completed."""
    blocked = [job_id for job_id, state in states.items() if state == "blocked"]
    if len(states) == 1:
        job_id = next(iter(states))
        return (f"{job_id} is blocked: it waits for a job that has not completed" if blocked
                else f"{job_id} is pending again")
    return f"{len(states) - len(blocked)} job(s) are pending again" + (
        f", {len(blocked)} blocked (waiting for jobs not completed)" if blocked else "")


def delete_matching(queue: Queue, query: JobQuery) -> list[str]:
    if query.states == DEAD and not query.has_text:
        return queue.purge_dead()
    return queue.delete(views.job_ids_matching(query))


class JobListScreen(ListScreen):
    """A list of jobs that can be marked, retried and deleted."""

    BINDINGS = [
        Binding("r", "retry", "Retry"),
        Binding("space", "mark", "Mark", show=False),
        Binding("R", "retry_bulk", "Retry many", show=False),
        Binding("d", "delete", "Delete"),
        Binding("D", "delete_bulk", "Delete many", show=False),
        Binding("u", "unmark", "Unmark all", show=False),
        Binding("l", "log", "Log"),
    ]
    RETRY_REMOVES = False  # does a retried row leave this list? (the DLQ: yes)
    matching: int | None = None  # how many jobs the filter matches, where a view counts them

    def __init__(self) -> None:
        self.marked: dict[str, str] = {}  # row id -> job id
        super().__init__()

    def mark_cell(self, job: dict[str, Any]) -> Text | str:
        return Text("●", style="bold #ffd75f") if self.row_id(job) in self.marked else ""

    def marks_text(self) -> str:
        return f"  ·  {len(self.marked)} marked" if self.marked else ""

    # ------------------------------------------------------------ marks

    def action_mark(self) -> None:
        job = self.table.current
        if job is None:
            return
        rid = self.row_id(job)
        if rid in self.marked:
            del self.marked[rid]
        else:
            self.marked[rid] = job["id"]
        self.table.render_rows(force=True)
        self.table.action_move(1)
        self.update_status(self.console.summary)

    def action_log(self) -> None:
        """The selected job's whole log, full screen (screens/log_viewer.py)."""
        job = self.table.current
        if job is not None:
            self.app.push_screen(LogViewerScreen(job["id"]))

    def action_unmark(self) -> None:
        self.marked.clear()
        self.table.render_rows(force=True)
        self.update_status(self.console.summary)

    def forget_rows(self, row_ids: set[str] | None) -> None:
        """Rows leave at once, and their marks with them."""
        if row_ids is None:
            row_ids = {self.row_id(r) for r in self.table.buffer}
        for rid in row_ids:
            self.marked.pop(rid, None)
        super().forget_rows(row_ids)
        self.update_status(self.console.summary)

    async def _run(self, removes: bool, rows: set[str] | None, call: Callable[[Queue], Any],
                   done: str | None = None) -> Any:
        if removes:
            return await self.act_removing(rows, call, done=done)
        result = await self.console.act(call, done=done)
        if result is not None and rows:
            for rid in rows:
                self.marked.pop(rid, None)
            self.table.render_rows(force=True)
        return result

    # ------------------------------------------------------------ one job

    @work(group="action")  # awaits the database: off the message loop
    async def action_retry(self) -> None:
        job = self.table.current
        if job is None:
            return
        if job["state"] != "dead":
            self.notify(f"job {job['id']} is {job['state']}; only dead jobs are retried "
                        "(the DLQ, key 3, lists them)", severity="warning")
            return
        moved = await self._run(self.RETRY_REMOVES, {self.row_id(job)},
                                lambda q: q.retry_dead([job["id"]]))
        if moved is not None:
            self.notify(retried_said(moved.states), timeout=3)

    def action_delete(self) -> None:
        job = self.table.current
        if job is None:
            return

        async def answer(yes: bool | None) -> None:
            if yes:
                await self._run(True, {self.row_id(job)}, lambda q: q.delete([job["id"]]),
                                done=f"deleted {job['id']}")

        self.console.push_screen(ConfirmDialog(
            f"Delete {job['state']} job {job['id']}?",
            f"{one_line(job['command'], 70)}\n\nIts output log goes too. This cannot be undone.",
            yes="Delete"), answer)

    # ------------------------------------------------------------ many jobs

    def _scope(self, verb: str) -> tuple[str, str, Callable[[Queue], Any], set[str] | None]:
        """(what, detail, call, rows): the marked rows, else all the filter matches."""
        if self.marked:
            ids = list(self.marked.values())
            call: Callable[[Queue], Any] = (lambda q: q.retry_dead(ids)) if verb == "retry" \
                else (lambda q: q.delete(ids))
            detail = ", ".join(ids[:8]) + (" …" if len(ids) > 8 else "")
            return f"{len(ids)} marked job{'s' if len(ids) != 1 else ''}", detail, call, \
                set(self.marked)
        query = filters.with_states(self.effective_query(),
                                    DEAD if verb == "retry" else NOT_RUNNING)
        call = (lambda q: retry_matching(q, query)) if verb == "retry" \
            else (lambda q: delete_matching(q, query))
        kind = "dead job" if verb == "retry" else "job that is not running"
        if self.filter_text:
            known = self.matching
            if verb == "retry" and known is not None:
                return (f"the {known:,} dead job{'s' if known != 1 else ''} matching "
                        f"'{self.filter_text}'", "", call, None)
            return f"every {kind} matching '{self.filter_text}'", "", call, None
        if self.effective_query().states:
            states = ", ".join(query.states)
            return f"every {kind} in this tab ({states})", "", call, None
        summary = self.console.summary
        dead = summary.counts.get("dead", 0) if summary and summary.counted else None
        what = (f"all {dead:,} dead jobs" if dead is not None else "every dead job") \
            if verb == "retry" else f"every {kind}"
        return what, "", call, None

    def _bulk(self, verb: str, consequence: str, done: str | Callable[[Any], str]) -> None:
        if self.table.loaded and not self.table.buffer:
            return  # nothing to act on (before the first read, the question still applies)
        what, detail, call, rows = self._scope(verb)
        removes = verb == "delete" or self.RETRY_REMOVES

        async def answer(yes: bool | None) -> None:
            if yes:
                ids = await self._run(removes, rows, call)
                if ids is not None:
                    said = done(ids) if callable(done) else done.format(n=len(ids))
                    self.notify(said, timeout=4)

        self.console.push_screen(ConfirmDialog(
            f"{verb.capitalize()} {what}?", (detail + "\n\n" if detail else "") + consequence,
            yes=verb.capitalize()), answer)

    def action_retry_bulk(self) -> None:
        self._bulk("retry", "They go back to pending now, with attempts reset.",
                   lambda moved: retried_said(moved.states))

    def action_delete_bulk(self) -> None:
        self._bulk("delete", "Their output logs go too. This cannot be undone.",
                   "deleted {n} job(s)")
