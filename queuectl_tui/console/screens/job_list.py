"""What Jobs and the DLQ share: marks, retry and delete of one, the marked, or all matching.

Single actions act on the row under the cursor. Bulk actions (Shift: `R`, `D`)
act on the marked rows, or, with nothing marked, on every job the filter and
state tab match (not only the rows on screen), and always ask first, with No
as the default answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rich.text import Text
from textual import work
from textual.binding import Binding

from queuectl_tui.console import filters
from queuectl_tui.console.formatting import one_line, plural
from queuectl_tui.console.screens.confirm import ConfirmDialog
from queuectl_tui.console.screens.log_viewer import LogViewerScreen
from queuectl_tui.console.screens.enqueue import EnqueueDialog, similar
from queuectl_tui.console.screens.listing import ListScreen
from queuectl_tui.engine import (STATES, JobQuery, Queue, RunAgain, count_jobs, job_detail,
                                 job_ids_matching)
from queuectl_tui.errors import QueuectlError

DEAD = ("dead",)
NOT_RUNNING = tuple(s for s in STATES if s != "processing")  # what delete may touch
SHOWN_NAMES = {"processing": "running", "failed": "retrying", "completed": "done"}


def retry_matching(queue: Queue, query: JobQuery) -> RunAgain:
    if query.states == DEAD and not query.has_text:
        return queue.retry_all_dead()
    return queue.retry_dead(job_ids_matching(query, now=queue.clock.now()))


def retried_said(states: dict[str, str]) -> str:
    """Where retried jobs went, as the engine moved them (`RunAgain.states`):
    pending, or blocked while a job they wait for has not completed."""
    blocked = [job_id for job_id, state in states.items() if state == "blocked"]
    if len(states) == 1:
        job_id = next(iter(states))
        return (f"{job_id} is blocked: it waits for a job that has not completed" if blocked
                else f"{job_id} is pending again")
    return f"{plural(len(states) - len(blocked), 'job')} pending again" + (
        f", {len(blocked)} blocked (waiting for jobs not completed)" if blocked else "")


def delete_matching(queue: Queue, query: JobQuery) -> list[str]:
    if query.states == DEAD and not query.has_text:
        return queue.purge_dead()
    return queue.delete(job_ids_matching(query, now=queue.clock.now()))


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
        Binding("N", "enqueue_similar", "Enqueue similar", show=False),
        Binding("y", "copy_id", "Copy id", show=False),
        Binding("Y", "copy_command", "Copy command", show=False),
    ]
    RETRY_REMOVES = False  # does a retried row leave this list? (the DLQ: yes)
    matching: int | None = None  # how many jobs the filter matches, where a view counts them

    def __init__(self) -> None:
        self.marked: dict[str, str] = {}  # row id -> job id
        self._counts = 0  # bulk counts asked for (each names its slow read)
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
        """Run the selected job again: a dead one is retried, a completed or
        cancelled one requeued (as `queuectl requeue`); others are on their way."""
        job = self.table.current
        if job is None:
            return
        job_id = job["id"]
        if job["state"] == "dead":
            moved = await self._run(self.RETRY_REMOVES, {self.row_id(job)},
                                    lambda q: q.retry_dead([job_id]))
            if moved is not None:
                self.notify(retried_said(moved.states), timeout=3)
        elif job["state"] in ("completed", "cancelled"):
            moved = await self._run(False, None, lambda q: q.requeue([job_id]))
            if moved is not None:
                self.notify(f"requeued {job_id}: " + (
                    "blocked until what it waits for completes"
                    if moved.states.get(job_id) == "blocked"
                    else "it runs again (attempts start afresh)"), timeout=3)
        else:
            self.notify(f"job {job_id} is {SHOWN_NAMES.get(job['state'], job['state'])}; "
                        "r runs again a dead, done or cancelled job", severity="warning")

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

    async def action_enqueue_similar(self) -> None:
        """`N`: the enqueue dialog filled in from the selected job."""
        job = self.table.current
        if job is None:
            return
        job_id = job["id"]
        full = await self.console.act(lambda queue: job_detail(job_id))
        if full is None:
            self.notify(f"job {job_id} is gone", severity="warning")
            return
        values, keep = similar(full)
        self.console.push_screen(EnqueueDialog(values, keep, like=job_id))

    def action_copy_id(self) -> None:
        self._copy("id")

    def action_copy_command(self) -> None:
        self._copy("command")

    def _copy(self, field: str) -> None:
        """To the terminal's clipboard (OSC 52: works over ssh and in tmux with
        set-clipboard on; a terminal that ignores it copies nothing)."""
        job = self.table.current
        if job is None:
            return
        self.app.copy_to_clipboard(job[field])
        self.notify(f"copied {job['id']}'s {field} (OSC 52)"
                    if field != "id" else f"copied {job['id']} (OSC 52)", timeout=3)

    # ------------------------------------------------------------ many jobs

    def _scope(self, verb: str) -> Bulk:
        """The marked rows, else every job the filter and tab match."""
        if self.marked:
            ids = list(self.marked.values())
            call: Callable[[Queue], Any] = (lambda q: q.retry_dead(ids)) if verb == "retry" \
                else (lambda q: q.delete(ids))
            detail = ", ".join(ids[:8]) + (" …" if len(ids) > 8 else "")
            return Bulk(lambda n: plural(len(ids), "marked job"), detail, call,
                        set(self.marked), len(ids), None)
        query = filters.with_states(self.effective_query(),
                                    DEAD if verb == "retry" else NOT_RUNNING)
        call = (lambda q: retry_matching(q, query)) if verb == "retry" \
            else (lambda q: delete_matching(q, query))
        one, many = bulk_nouns(query.states, self.filter_text)

        def what(n: int | None) -> str:
            if n is None:
                return f"every {one} (counting…)"
            return f"the {n:,} {one if n == 1 else many}"

        return Bulk(what, "", call, None, self.known_count(query), query)

    def known_count(self, query: JobQuery) -> int | None:
        """How many jobs a bulk action's query matches, when the header's counts
        (followed through the event log: free at any size) or this view's own
        count of its filter say it; None: it must be counted."""
        if self.filter_text and self.matching is not None \
                and filters.with_states(self.effective_query(), DEAD) == query:
            return self.matching
        summary = self.console.summary
        if query.has_text or query.sort == "run" or summary is None or not summary.counted:
            return None
        return sum(summary.counts.get(s, 0) for s in query.states)

    def _bulk(self, verb: str, consequence: str, done: str | Callable[[Any], str]) -> None:
        if self.table.loaded and not self.table.buffer:
            return  # nothing to act on (before the first read, the question still applies)
        scope = self._scope(verb)
        if scope.known == 0:
            self.notify(f"nothing to {verb} here", timeout=3)
            return
        removes = verb == "delete" or self.RETRY_REMOVES

        async def answer(yes: bool | None) -> None:
            if yes:
                ids = await self._run(removes, scope.rows, scope.call)
                if ids is not None:
                    said = done(ids) if callable(done) else \
                        done.format(n=plural(len(ids), "job"))
                    self.notify(said, timeout=4)

        def question(n: int | None) -> str:
            return f"{verb.capitalize()} {scope.what(n)}?"

        dialog = ConfirmDialog(question(scope.known),
                               (scope.detail + "\n\n" if scope.detail else "") + consequence,
                               yes=verb.capitalize())
        self.console.push_screen(dialog, answer)
        if scope.known is None and scope.query is not None:
            self._count_for(dialog, scope.query, question)

    @work(exclusive=False, group="bulk-count")
    async def _count_for(self, dialog: ConfirmDialog, query: JobQuery,
                         question: Callable[[int | None], str]) -> None:
        """A filter's count on the slow thread (a text filter may scan every job):
        the question says "counting…" until it comes, and keys never wait for it."""
        self._counts += 1
        try:
            n = await self.console.db.call_slow(f"bulk-count-{self._counts}",
                                                lambda q: count_jobs(query))
        except QueuectlError:
            return
        if n is not None and dialog.is_attached:
            dialog.set_question(question(n))

    def action_retry_bulk(self) -> None:
        self._bulk("retry", "They run again now, attempts reset (blocked first if a job "
                   "they wait for has not completed).",
                   lambda moved: retried_said(moved.states))

    def action_delete_bulk(self) -> None:
        self._bulk("delete", "Their output logs go too. This cannot be undone.",
                   "deleted {n}")


def bulk_nouns(states: tuple[str, ...], matching: str = "") -> tuple[str, str]:
    """What a bulk action's jobs are called, singular and plural."""
    m = f" matching '{matching}'" if matching else ""
    if set(states) == set(NOT_RUNNING):
        return f"job{m} that is not running", f"jobs{m} that are not running"
    named = " or ".join(SHOWN_NAMES.get(s, s) for s in states)
    return f"{named} job{m}", f"{named} jobs{m}"


@dataclass
class Bulk:
    """What a bulk key acts on: its words for a count, the call, the rows it takes."""

    what: Callable[[int | None], str]  # "the 3 dead jobs" (None: still counting)
    detail: str
    call: Callable[[Queue], Any]
    rows: set[str] | None  # rows that leave at once (None: every row shown)
    known: int | None  # how many, when known without reading
    query: JobQuery | None  # what to count when not known
