"""DLQ: dead jobs, their last error; retry or delete one, the marked, or all matching."""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.binding import Binding

from queuectl_tui.console import filters
from queuectl_tui.console.data import Summary
from queuectl_tui.console.formatting import ago, one_line, tries
from queuectl_tui.console.screens.confirm import ConfirmDialog
from queuectl_tui.console.screens.listing import ListScreen
from queuectl_tui.console.widgets.window_table import Column
from queuectl_tui.engine import views
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.views import JobQuery, Window

DEAD = ("dead",)


def _retry_matching(queue: Queue, query: JobQuery) -> list[str]:
    return queue.retry_dead(views.job_ids_matching(query))


def _delete_matching(queue: Queue, query: JobQuery) -> list[str]:
    return queue.delete(views.job_ids_matching(query))


class DlqScreen(ListScreen):
    VIEW = "dlq"
    NOUN = "dead jobs"
    FILTER_HINT = "cmd:curl id:ab12 worker:3 or text in id/command; enter applies"
    BINDINGS = [
        Binding("r", "retry", "Retry"),
        Binding("space", "mark", "Mark"),
        Binding("R", "retry_bulk", "Retry marked/all"),
        Binding("d", "delete", "Delete"),
        Binding("D", "delete_bulk", "Delete marked/all"),
        Binding("u", "unmark", "Unmark all", show=False),
    ]

    def __init__(self) -> None:
        self.marked: dict[str, str] = {}  # row id (seq) -> job id
        super().__init__()

    def columns(self) -> list[Column]:
        return [Column("mark", " ", 1), Column("id", "ID", 12),
                Column("tries", "TRIES", 5, hide_below=100), Column("died", "DIED", 10),
                Column("error", "LAST ERROR", None), Column("command", "COMMAND", None)]

    def render_row(self, job: dict[str, Any]) -> list[Any]:
        now = self.console.summary.now if self.console.summary else job["updated_at"]
        mark = Text("●", style="bold #ffd75f") if self.row_id(job) in self.marked else ""
        return [mark, job["id"], tries(job), ago(job["finished_at"] or job["updated_at"], now),
                Text(one_line(job["last_error"]), style="#ff875f"), one_line(job["command"])]

    def parse_filter(self, text: str) -> JobQuery:
        return filters.with_states(filters.parse_jobs(text), DEAD)

    def fetch(self, query: JobQuery, anchor: Any, before: int,
              after: int) -> Callable[[Queue], Window]:
        return lambda queue: views.job_window(query, anchor, before, after)

    def empty_message(self, summary: Summary) -> str:
        if self.filter_text and summary.counts.get("dead"):
            return "No dead job matches the filter. Press [b]esc[/b] to clear it."
        return ("The DLQ is empty: no job has used up its retries.\n\n"
                "Jobs land here after their last failed attempt (or when cancelled);\n"
                "from here [b]r[/b] retries one and [b]R[/b] retries many.")

    def total_text(self, summary: Summary) -> str:
        dead = summary.counts.get("dead", 0)
        text = f"{dead:,} dead"
        if self.marked:
            text += f"  ·  {len(self.marked)} marked"
        return text

    def status_extra(self) -> str:
        return "space marks · R retries marked (or all matching) · D deletes"

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

    # ------------------------------------------------------------ retry

    async def action_retry(self) -> None:
        job = self.table.current
        if job is None:
            return
        await self.act_removing({self.row_id(job)}, lambda q: q.retry_dead([job["id"]]),
                                done=f"{job['id']} is pending again")

    def _scope(self, verb: str) -> tuple[str, str, Callable[[Queue], Any], set[str] | None]:
        """What a bulk action applies to: the marked rows, else all matching the filter."""
        if self.marked:
            ids = list(self.marked.values())
            rows = set(self.marked)
            call: Callable[[Queue], Any] = (lambda q: q.retry_dead(ids)) if verb == "retry" \
                else (lambda q: q.delete(ids))
            return f"{len(ids)} marked job{'s' if len(ids) != 1 else ''}", ", ".join(ids[:8]) \
                + (" …" if len(ids) > 8 else ""), call, rows
        query = self.effective_query()
        if self.filter_text:
            call = (lambda q: _retry_matching(q, query)) if verb == "retry" \
                else (lambda q: _delete_matching(q, query))
            return f"every dead job matching '{self.filter_text}'", "", call, None
        call = (lambda q: q.retry_all_dead()) if verb == "retry" else (lambda q: q.purge_dead())
        dead = self.console.summary.counts.get("dead", 0) if self.console.summary else 0
        return f"all {dead:,} dead jobs", "", call, None

    def action_retry_bulk(self) -> None:
        self._bulk("retry", "They go back to pending now, with attempts reset.",
                    "{n} job(s) are pending again")

    def action_delete_bulk(self) -> None:
        self._bulk("delete", "Their output logs go too. This cannot be undone.",
                    "deleted {n} job(s)")

    def _bulk(self, verb: str, consequence: str, done: str) -> None:
        """Retry or delete the marked rows, else all matching; asks first (No by default)."""
        if not self.table.buffer:
            return
        what, detail, call, rows = self._scope(verb)

        async def answer(yes: bool | None) -> None:
            if yes:
                ids = await self.act_removing(rows, call)
                if ids is not None:
                    self.notify(done.format(n=len(ids)), timeout=4)

        self.console.push_screen(ConfirmDialog(
            f"{verb.capitalize()} {what}?", (detail + "\n\n" if detail else "") + consequence,
            yes=verb.capitalize()), answer)
