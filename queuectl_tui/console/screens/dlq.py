"""DLQ: dead jobs and their last error; retry or delete one, the marked, or all
matching. `f` groups them by how they failed (screens/dlq_groups.py): a group
is retried or deleted at once, and enter lists its jobs."""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from queuectl_tui.console import filters
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.formatting import ago, one_line, plural, tries
from queuectl_tui.console.screens import dlq_groups
from queuectl_tui.console.screens.confirm import ConfirmDialog
from queuectl_tui.console.screens.dlq_groups import GroupTable
from queuectl_tui.console.screens.job_list import DEAD, JobListScreen, retried_said
from queuectl_tui.console.trail import Place
from queuectl_tui.console.widgets.repaint import show
from queuectl_tui.console.widgets.window_table import Column
from queuectl_tui.engine import JobQuery, Queue, Window, count_jobs, job_window
from queuectl_tui.safe_text import printable


GROUPS, LIST = "groups", "list"  # the two ways the view shows (Place.state, show_state)
# The list's keys that mean nothing for a group: off (and out of the footer) by failure.
LIST_ONLY = {"mark", "retry_bulk", "delete_bulk", "unmark", "log", "enqueue_similar",
             "copy_id", "copy_command", "filter"}


class DlqScreen(JobListScreen):
    VIEW = "dlq"
    NOUN = "dead jobs"
    FILTER_HINT = ("queue:mail key:c1 group:3fa2 cmd:curl id:ab12 or text in id/command; "
                   "enter applies")
    RETRY_REMOVES = True
    BINDINGS = [
        Binding("f", "by_failure(True)", "By failure"),
        Binding("f", "by_failure(False)", "Every job"),
    ]
    grouped = False  # showing failure groups instead of dead jobs
    _group_anchor: str | None = None  # the group the cursor goes to at the next showing

    # ------------------------------------------------------------ by failure

    def compose_above(self) -> ComposeResult:
        groups = GroupTable(id="groups")
        groups.display = False  # until `f`
        yield groups

    def on_mount(self) -> None:
        if self.grouped:  # asked for before the view was first shown
            self._show_mode(mounting=True)

    @property
    def groups_table(self) -> GroupTable:
        return self.query_one("#groups", GroupTable)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`f` is one key, the footer naming what it will show; the list's own
        keys are off while groups are shown (a read-only console's writes are
        off in both: the base class says)."""
        if not super().check_action(action, parameters):
            return False
        if action == "by_failure":
            return parameters[0] != self.grouped
        return not (self.grouped and action in LIST_ONLY)

    def action_by_failure(self, grouped: bool) -> None:
        self.grouped = grouped
        self._show_mode()
        self.refresh_bindings()
        self.console.request_refresh(summary=False)

    def _show_mode(self, mounting: bool = False) -> None:
        if not (self.is_mounted or mounting):
            return
        groups = self.groups_table
        groups.display = self.grouped
        self.table.display = not self.grouped and bool(self.table.buffer)
        self.query_one("#empty", Static).display = False
        if self.grouped:
            self._show_filter_box(False)
            self.query_one("#filter-error", Static).display = False
            groups.focus()
        else:
            self.table.focus()
        self.update_status(self.console.summary)

    def show_state(self, name: str) -> None:
        """The view's two ways of showing, as a jump or the trail back names them."""
        self.grouped = name == GROUPS
        self._show_mode()
        self.refresh_bindings()

    def state_name(self) -> str | None:
        return GROUPS if self.grouped else LIST

    def where(self) -> Place:
        if not self.grouped:
            return super().where()
        current = self.groups_table.selected()
        return Place(self.VIEW, self.filter_text, GROUPS, current.group if current else None)

    def return_to(self, place: Place) -> None:
        if place.state != GROUPS:
            super().return_to(place)
            return
        self.set_filter(place.filter_text)
        self._group_anchor = place.anchor
        self.show_state(GROUPS)
        self.console.request_refresh(summary=False)

    def loader(self) -> Callable[[Queue], Any]:
        if not self.grouped:
            return super().loader()
        return lambda queue: {"groups": queue.dlq_groups(), "now": queue.clock.now()}

    def apply(self, data: dict[str, Any], summary: Summary) -> None:
        if "groups" not in data:
            if not self.grouped:  # a read for the other way of showing: dropped
                super().apply(data, summary)
            return
        if not self.grouped:
            return
        table = self.groups_table
        table.show(data["groups"], data["now"], self._group_anchor)
        self._group_anchor = None
        empty = self.query_one("#empty", Static)
        empty.display = not data["groups"]
        table.display = bool(data["groups"])
        if not data["groups"]:
            empty.update(self.empty_message(summary))
        elif self.focused is None and self.screen.is_current:
            table.focus()
        self.update_status(summary)

    def update_status(self, summary: Summary | None, error: str | None = None) -> None:
        if not self.grouped:
            super().update_status(summary, error)
            return
        dead = summary.counts.get("dead", 0) if summary and summary.counted else None
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(dlq_groups.status_text(self.groups_table, dead), style="bold")
        text.append(("  ·  " if text.plain else "") + "r retries a group · d deletes it · "
                    "enter lists its jobs · f every dead job", style="dim")
        show(self.query_one("#status", Static), text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a group: its dead jobs, the list under `group:ID` (esc comes back)."""
        if event.data_table is not self.groups_table:
            return
        event.stop()
        group = self.groups_table.selected()
        if group is not None:
            self.console.jump(self.VIEW, f"group:{group.group}", state=LIST)

    def action_retry(self) -> None:
        """`r`: the selected job (a worker of its own), or by failure its group."""
        if not self.grouped:
            super().action_retry()
            return
        group = self.groups_table.selected()
        if group is None:
            return

        async def answer(yes: bool | None) -> None:
            if yes:
                moved = await self.console.act(
                    lambda q: q.retry_all_dead(group=group.group))
                if moved is not None:
                    self.notify(retried_said(moved.states), timeout=4)

        self.console.push_screen(ConfirmDialog(
            dlq_groups.question("Retry", group),
            dlq_groups.detail(group, "They run again now, attempts reset (blocked first if a "
                                     "job they wait for has not completed)."),
            yes="Retry"), answer)

    def action_delete(self) -> None:
        if not self.grouped:
            super().action_delete()
            return
        group = self.groups_table.selected()
        if group is None:
            return

        async def answer(yes: bool | None) -> None:
            if yes:
                gone = await self.console.act(lambda q: q.purge_dead(group=group.group))
                if gone is not None:
                    self.notify(f"deleted {plural(len(gone), 'job')}", timeout=4)

        self.console.push_screen(ConfirmDialog(
            dlq_groups.question("Delete", group),
            dlq_groups.detail(group, "Their output logs go too. This cannot be undone."),
            yes="Delete"), answer)

    def action_clear_filter(self) -> None:
        """Esc by failure: back to every dead job (unless a jump came here)."""
        if self.grouped and self.console.trail.last_to != self.VIEW:
            self.action_by_failure(False)
            return
        super().action_clear_filter()

    # ------------------------------------------------------------ every dead job

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
        return "space marks · R retries marked (or all matching) · D deletes · f by failure"
