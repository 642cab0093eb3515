"""DLQ: dead jobs and their last error; retry or delete one, the marked, or all matching."""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text

from queuectl_tui.console import filters
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.formatting import ago, one_line, tries
from queuectl_tui.console.screens.job_list import DEAD, JobListScreen
from queuectl_tui.console.widgets.window_table import Column
from queuectl_tui.engine import JobQuery, Queue, Window, count_jobs, job_window
from queuectl_tui.safe_text import printable


class DlqScreen(JobListScreen):
    VIEW = "dlq"
    NOUN = "dead jobs"
    FILTER_HINT = ("queue:mail key:c1 cmd:curl id:ab12 worker:vm-91 or text in id/command; "
                   "enter applies")
    RETRY_REMOVES = True

    def columns(self) -> list[Column]:
        return [Column("mark", " ", 1), Column("id", "ID", 12, grow_to=40, cut_middle=True),
                Column("queue", "QUEUE", 9, hide_below=100),
                Column("tries", "TRIES", 5, hide_below=100), Column("died", "DIED", 10),
                Column("error", "LAST ERROR", None), Column("command", "COMMAND", None)]

    def render_row(self, job: dict[str, Any]) -> list[Any]:
        now = self.console.summary.now if self.console.summary else job["updated_at"]
        return [self.mark_cell(job), printable(job["id"]), one_line(job["queue"]), tries(job),
                ago(job["finished_at"] or job["updated_at"], now),
                Text(one_line(job["last_error"]), style="#ff875f"), one_line(job["command"])]

    def parse_filter(self, text: str) -> JobQuery:
        return filters.with_states(filters.parse_jobs(text), DEAD)

    def fetch(self, query: JobQuery, anchor: Any, before: int,
              after: int) -> Callable[[Queue], Window]:
        return lambda queue: job_window(query, anchor, before, after,
                                        now=queue.clock.now())

    def empty_message(self, summary: Summary) -> str:
        if self.filter_text and summary.counts.get("dead"):
            return "No dead job matches the filter. Press [b]esc[/b] to clear it."
        return ("The DLQ is empty: no job has used up its retries.\n\n"
                "Jobs land here after their last failed attempt (or when cancelled);\n"
                "from here [b]r[/b] retries one and [b]R[/b] retries many.")

    def extra_load(self, queue: Queue) -> dict[str, Any]:
        """With a filter, count what it matches: the status line and a bulk retry
        say how many, not the DLQ's size. A text filter's count may scan every
        dead job, so the console counts on its slow thread (see apply_extra);
        only a one-thread console (pictures, tests) counts here, with the rows."""
        if not self.filter_text or self.console.db.threaded:
            return {}
        return {"matching": count_jobs(self.effective_query(), now=queue.clock.now())}

    def apply_extra(self, data: dict[str, Any], summary: Summary) -> None:
        if "matching" in data or not self.filter_text:
            self.matching = data.get("matching")
            return
        query = self.effective_query()
        self.matching = self.console.slow_read(
            f"dlq-matching:{self.filter_text}",
            lambda queue: count_jobs(query, now=queue.clock.now()), 5.0)

    def set_filter(self, text: str) -> bool:
        self.matching = None  # "counting…" until the new filter's count arrives
        return super().set_filter(text)

    def total_text(self, summary: Summary) -> str:
        dead = f"{summary.counts.get('dead', 0):,}" if summary.counted else "…"
        if not self.filter_text:
            return f"{dead} dead" + self.marks_text()
        shown = "counting…" if self.matching is None else f"{self.matching:,}"
        return f"{shown} of {dead} dead match" + self.marks_text()

    def status_extra(self) -> str:
        if self.console.read_only:
            return "l: the job's log · enter: the job in Jobs"
        return "space marks · R retries marked (or all matching) · D deletes"
