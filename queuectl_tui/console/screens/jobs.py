"""Jobs: every job, live, with state tabs, filter, sort and a detail pane."""

from __future__ import annotations

from typing import Any, Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Tab, Tabs

from queuectl_tui.console import filters, reads
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.formatting import (duration, one_line, plural, progress_cell,
                                             shown_state, state_text, tries, when)
from queuectl_tui.console.screens.confirm import ConfirmDialog
from queuectl_tui.console.screens.edit_job import EditJobDialog
from queuectl_tui.console.screens.job_list import SHOWN_NAMES, JobListScreen
from queuectl_tui.console.widgets.job_detail import JobDetail
from queuectl_tui.console.widgets.status_strip import short
from queuectl_tui.console.widgets.window_table import Column, WindowTable
from queuectl_tui.engine import (HOLDABLE, STATE_LABELS, WAITING, JobQuery, Queue, Window,
                                 job_detail, job_window)
from queuectl_tui.errors import QueuectlError
from queuectl_tui.safe_text import printable

# The state tabs, in the order a job moves through them; their labels are the
# console's words for the states (engine/states.py STATE_LABELS).
TAB_STATES = ("pending", "blocked", "held", "processing", "failed", "dead", "completed",
              "cancelled")
STATE_TABS = (("all", "All", ()),
              *((state, STATE_LABELS[state], (state,)) for state in TAB_STATES))
SHORT_TAB = {"Pending": "Pend", "Blocked": "Blkd", "Running": "Run", "Retrying": "Retry",
             "Cancelled": "Canc"}  # under 100 columns, so every tab and count fits
SORTS = ("age", "run")  # see the engine's JOB_SORTS: each one served by an index
PAUSE_SAID = {"pausing": "pausing {id}: its worker stops it within a second",
              "paused": "{id} is paused already", "resuming": "resuming {id}",
              "running": "{id} was not paused"}
SORT_BY_COLUMN = {"id": "age", "pri": "run", "when": "run"}


def cancel_notice(result: list[tuple[str, str]]) -> str:
    """'cancelled 2 jobs', 'stopping 1 running job', or both: no '0 job(s)'."""
    stopping = sum(1 for _, what in result if what == "stopping")
    done = len(result) - stopping
    parts = ([f"cancelled {plural(done, 'job')}"] if done or not stopping else []) \
        + ([f"stopping {plural(stopping, 'running job')} (SIGTERM, then SIGKILL)"]
           if stopping else [])
    return "; ".join(parts)


class JobsScreen(JobListScreen):
    VIEW = "jobs"
    NOUN = "jobs"
    FILTER_HINT = ("state:dead queue:mail key:c1 cmd:curl worker:vm-91 id:ab12 or text; "
                   "enter applies, esc cancels")
    BINDINGS = [
        Binding("left_square_bracket", "state_tab(-1)", "Prev state", show=False),
        Binding("right_square_bracket", "state_tab(1)", "State", show=False),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("v", "toggle_detail", "Detail", show=False),
        Binding("h", "history", "History", show=False),
        Binding("c", "cancel_job", "Cancel"),
        Binding("e", "edit_job", "Edit"),
        Binding("H", "hold_or_release", "Hold"),
        Binding("z", "pause_job", "Pause/resume", show=False),
        Binding("a", "open_dependency", "Waits for", show=False),
        Binding("A", "open_dependents", "Waited for by", show=False),
    ]

    def __init__(self) -> None:
        self.sort = "age"
        self.descending = True
        self.tab_states: tuple[str, ...] = ()
        self._chasing = False  # the last read's detail was for another row
        super().__init__()

    # ------------------------------------------------------------ list hooks

    def columns(self) -> list[Column]:
        return [Column("mark", " ", 1), Column("id", "ID", 12, grow_to=40, cut_middle=True),
                Column("state", "STATE", 10), Column("queue", "QUEUE", 9, hide_below=100),
                Column("tries", "TRIES", 5, hide_below=100), Column("pri", "PRI", 4),
                Column("when", "WHEN", 17), Column("dur", "TOOK", 7, hide_below=100),
                Column("command", "COMMAND", None)]

    def render_row(self, job: dict[str, Any]) -> list[Any]:
        now = self.console.db.clock.now() if self.console.summary is None \
            else self.console.summary.now
        return [self.mark_cell(job), printable(job["id"]), state_text(shown_state(job, now)),
                one_line(job["queue"]), tries(job),
                str(job["priority"]),
                progress_cell(job, now) or when(job, now), duration(job, now),
                one_line(job["command"])]

    def parse_filter(self, text: str) -> JobQuery:
        return filters.parse_jobs(text, sort=getattr(self, "sort", "age"),
                                  descending=getattr(self, "descending", True))

    def effective_query(self) -> JobQuery:
        return filters.with_states(self.query_obj, self.tab_states)

    def fetch(self, query: JobQuery, anchor: Any, before: int,
              after: int) -> Callable[[Queue], Window]:
        return lambda queue: job_window(query, anchor, before, after,
                                        now=queue.clock.now())

    def compose_above(self) -> ComposeResult:
        yield Tabs(*[Tab(label, id=f"state-{name}") for name, label, _ in STATE_TABS],
                   id="state-tabs")

    def compose_below(self) -> ComposeResult:
        yield JobDetail(id="detail")

    def on_mount(self) -> None:
        super().on_mount()
        tabs = self.query_one("#state-tabs", Tabs)
        tabs.can_focus = False
        name = next(n for n, _, s in STATE_TABS if s == self.tab_states)
        tabs.active = f"state-{name}"
        if self.size.height < 30:  # small terminal: the list first, enter shows the detail
            self.query_one(JobDetail).display = False

    # ------------------------------------------------------------ refresh

    def loader(self) -> Callable[[Queue], Any]:
        load = super().loader()
        detail = self.query_one(JobDetail)
        shown = detail.display
        job_id, offset = detail.want()
        wanted, at_end = self.table.landing_args()
        row_id = self.row_id

        def load_all(queue: Queue) -> dict[str, Any]:
            result = load(queue)
            target = None
            if shown:  # the detail of the row the cursor lands on, in the same trip
                rows = result["window"].rows
                if rows:
                    target = rows[WindowTable.landing(result["window"], wanted, row_id,
                                                      at_end)]["id"]
            asked = offset if target == job_id else None
            result["detail"] = reads.job_detail(queue, target, asked)
            result["detail_offset"] = asked
            result["detail_for"] = target
            return result

        return load_all

    def apply_extra(self, result: dict[str, Any], summary: Summary) -> None:
        detail = self.query_one(JobDetail)
        current = self.table.current
        detail.select(current["id"] if current else None)
        detail.show(result.get("detail"), summary.now, asked_offset=result.get("detail_offset"))
        missed = detail.display and current is not None and result.get("detail_for") != current["id"]
        if missed and not self._chasing:
            # Rows an action hid moved the cursor elsewhere than the read foresaw
            # (a key that moves it asks for its own read): one more read, not a loop
            # while a stream of jobs keeps moving rows.
            self.console.request_refresh(summary=False)
        self._chasing = missed
        self._label_tabs(summary)

    def _label_tabs(self, summary: Summary) -> None:
        tabs = self.query_one("#state-tabs", Tabs)
        narrow = self.size.width < 100
        for name, label, states in STATE_TABS:
            n = summary.total if not states else summary.counts.get(states[0], 0)
            label = SHORT_TAB.get(label, label) if narrow else label
            tab = tabs.query_one(f"#state-{name}", Tab)
            # Short counts (960k): a relabelled tab makes the screen lay out again,
            # so the label changes when the figure a person reads does.
            text = f"{label} {short(n)}" if summary.counted else label
            if str(tab.label) != text:
                tab.label = text

    def empty_message(self, summary: Summary) -> str:
        if summary.counted and summary.total == 0:
            return ("No jobs yet.\n\nPress [b]n[/b] to enqueue one, or from a shell:\n"
                    f"  queuectl --db {self.console.target} enqueue 'echo hello'\n"
                    f"  queuectl --db {self.console.target} demo   (a mix of examples)")
        what = "in this state" if self.tab_states and not self.filter_text else \
            "match the filter"
        return (f"No jobs {what}.\n\nPress [b]esc[/b] to clear the filter, "
                "[b]\\[[/b] / [b]][/b] for other states, or [b]1[/b]..[b]8[/b] for other views.")

    def total_text(self, summary: Summary) -> str:
        query = self.effective_query()
        tab = next(label for _, label, s in STATE_TABS if s == self.tab_states)
        if query.has_text or self.sort == "run":
            shown = f"{len(self.table.buffer)}{'+' if self.table.more_after else ''} shown"
            return f"{shown} in {tab}" + self.marks_text()
        if not summary.counted:
            return f"counting jobs… in {tab}" + self.marks_text()
        states = query.states or tuple(summary.counts)
        n = sum(summary.counts.get(s, 0) for s in states)
        return f"{plural(n, 'job')} in {tab}" + self.marks_text()

    def status_extra(self) -> str:
        if self.sort == "age":
            order = "newest first" if self.descending else "oldest first"
        else:
            order = "waiting jobs in run order: " + ("next to run first" if self.descending
                                                      else "last to run first")
        if self.console.read_only:
            return order + " · [ ] states · h history · l log"
        return order + " · [ ] states · h history · space marks: R/D act on marked or all"

    # ------------------------------------------------------------ cursor and detail

    def on_window_table_cursor_moved(self, event: WindowTable.CursorMoved) -> None:
        event.stop()
        detail = self.query_one(JobDetail)
        detail.select(event.row["id"] if event.row else None)
        if detail.display:
            self._read_detail()

    @work(exclusive=True, group="detail")
    async def _read_detail(self) -> None:
        """The selected job's detail alone (a move does not reread the rows); a
        newer move replaces this one."""
        if self.console.leaving(self):
            return  # the console is quitting: the detail's widgets are going
        detail = self.query_one(JobDetail)
        job_id, offset = detail.want()
        if job_id is None:
            return
        try:
            found = await self.console.db.call(reads.job_detail, job_id, offset)
        except QueuectlError:
            return  # the next refresh says what is wrong
        if self.console.leaving(self):
            return  # the console quit while it read
        summary = self.console.summary
        now = summary.now if summary is not None else self.console.db.clock.now()
        detail.show(found, now, asked_offset=offset)

    def on_window_table_chosen(self, event: WindowTable.Chosen) -> None:
        """Enter opens the row's detail here and keeps the filter. Textual would
        also run the base class's handler (open the job in Jobs by `id:`), which
        is for the other views: prevent_default stops that."""
        event.stop()
        event.prevent_default()
        detail = self.query_one(JobDetail)
        detail.select(event.row["id"])
        if not detail.display:
            detail.display = True
        self.console.request_refresh(summary=False)

    def action_toggle_detail(self) -> None:
        detail = self.query_one(JobDetail)
        detail.display = not detail.display
        self.console.request_refresh(summary=False)

    # ------------------------------------------------------------ state tabs and sort

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tabs.id != "state-tabs":
            super().on_tabs_tab_activated(event)
            return
        event.stop()
        name = (event.tab.id or "state-all").removeprefix("state-")
        states = next(s for n, _, s in STATE_TABS if n == name)
        if states != self.tab_states:
            self.tab_states = states
            self.table.reset()
            self.update_status(self.console.summary)

    def action_state_tab(self, step: int) -> None:
        tabs = self.query_one("#state-tabs", Tabs)
        tabs.action_next_tab() if step > 0 else tabs.action_previous_tab()

    def state_name(self) -> str | None:
        return next(n for n, _, s in STATE_TABS if s == self.tab_states)

    def show_state(self, name: str) -> None:
        self.tab_states = next(s for n, _, s in STATE_TABS if n == name)
        if self.is_mounted:
            self.query_one("#state-tabs", Tabs).active = f"state-{name}"

    def _resort(self) -> None:
        self.query_obj = self.parse_filter(self.filter_text)
        self.table.reset()
        self.update_status(self.console.summary)

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.descending = True
        self._resort()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self._resort()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        sort = SORT_BY_COLUMN.get(str(event.column_key.value))
        if sort is None:
            return
        if sort == self.sort:
            self.descending = not self.descending
        else:
            self.sort, self.descending = sort, True
        self._resort()

    # ------------------------------------------------------------ actions on the job

    def action_history(self) -> None:
        job = self.table.current
        if job is None:
            return
        self.console.jump("history", f"job:{job['id']}")

    @work(group="action")  # awaits the database: off the message loop
    async def action_open_dependency(self) -> None:
        """Jump to what the selected job waits for (the first dependency that has
        not completed; its whole list is in the detail pane)."""
        job = self.table.current
        if job is None:
            return
        after = await self.console.act(lambda queue: queue.waiting_for(job["id"]), read=True)
        if not after:
            self.notify(f"{job['id']} was not enqueued --after another job", timeout=3)
            return
        target = next((d for d in after if d["state"] not in ("completed", None)), after[0])
        self.console.jump("jobs", f"id:{target['id']}", state="all")

    async def action_open_dependents(self) -> None:
        """Jump to the jobs enqueued --after the selected one (the other way)."""
        job = self.table.current
        if job is None:
            return
        found = await self.console.act(lambda queue: queue.needed_by(job["id"]), read=True)
        if found is None:
            return
        if not found:
            self.notify(f"no job was enqueued --after {job['id']}", timeout=3)
            return
        self.console.jump("jobs", " ".join(f"id:{d['id']}" for d in found[:20]), state="all")

    def action_cancel_job(self) -> None:
        """Cancel the marked jobs, or the one under the cursor, running ones
        included (their worker stops them: SIGTERM, then SIGKILL); asks first."""
        job = self.table.current
        if self.marked:
            ids = list(self.marked.values())
            title = f"Cancel {len(ids)} marked job{'s' if len(ids) != 1 else ''}?"
            detail = ", ".join(ids[:8]) + (" …" if len(ids) > 8 else "")
        elif job is not None:
            ids = [job["id"]]
            title, detail = f"Cancel {job['state']} job {job['id']}?", one_line(job["command"], 70)
        else:
            return
        rows = set(self.marked) or None

        async def answer(yes: bool | None) -> None:
            if yes:
                result = await self._run(False, rows, lambda q: q.cancel(ids))
                if result is not None:
                    self.notify(cancel_notice(result), timeout=4)

        self.console.push_screen(ConfirmDialog(
            title, detail + "\n\nWaiting jobs stop at once; running ones get SIGTERM, then "
            "SIGKILL after 10 s. They end cancelled, not in the DLQ (requeue runs them again).",
            yes="Cancel jobs"), answer)

    @work(group="action")  # awaits the database: off the message loop
    async def action_edit_job(self) -> None:
        """`e`: the selected job's form, filled in from it (screens/edit_job.py)."""
        job = self.table.current
        if job is None:
            return
        if job["state"] not in WAITING:
            self.notify(f"job {job['id']} is {SHOWN_NAMES.get(job['state'], job['state'])}; "
                        "only a job that has not started can be edited", severity="warning")
            return
        job_id = job["id"]
        full = await self.console.act(lambda queue: job_detail(job_id), read=True)
        if full is None:
            self.notify(f"job {job_id} is gone", severity="warning")
            return
        self.console.push_screen(EditJobDialog(full))

    @work(group="action")
    async def action_hold_or_release(self) -> None:
        """`H`: hold the marked jobs or the selected one (pending, retrying,
        blocked), or release it when it is held (the marked: when all of them
        are). Nothing running is touched, so it does not ask; the notice says
        what happened."""
        job = self.table.current
        ids = list(self.marked.values()) or ([job["id"]] if job is not None else [])
        if not ids:
            return
        rows = set(self.marked) or None
        if job is not None and not self.marked and job["state"] not in (*HOLDABLE, "held"):
            self.notify(f"job {job['id']} is {SHOWN_NAMES.get(job['state'], job['state'])}; "
                        "H holds a pending, retrying or blocked job"
                        + (" (a running one: pause)" if job["state"] == "processing" else ""),
                        severity="warning")
            return
        if self.marked:
            release = all(self._shown_state(rid) == "held" for rid in self.marked)
        else:
            release = job is not None and job["state"] == "held"
        if release:
            result = await self._run(False, rows, lambda q: q.release_held(ids))
            if result is not None:
                self.notify(released_notice(result), timeout=4)
        else:
            result = await self._run(False, rows, lambda q: q.hold(ids))
            if result is not None:
                self.notify(f"held {plural(len(result), 'job')}: none starts until released "
                            "(H again)", timeout=4)

    def _shown_state(self, row_id: str) -> str | None:
        """The state a marked row showed when it was last read (None: scrolled out)."""
        return next((r["state"] for r in self.table.buffer if self.row_id(r) == row_id), None)


    def action_pause_job(self) -> None:
        """Pause the running job under the cursor (its worker stops its whole
        process group, SIGSTOP, wherever it runs), or resume a paused one;
        asks first, as it changes running work."""
        job = self.table.current
        if job is None:
            return
        if job["state"] != "processing":
            self.notify(f"job {job['id']} is {SHOWN_NAMES.get(job['state'], job['state'])}; "
                        "z pauses or resumes a running job", severity="warning")
            return
        job_id = job["id"]
        stop = not (job.get("pause_requested") or job.get("paused_at") is not None)
        if stop:
            title, yes = f"Pause running job {job_id}?", "Pause"
            detail = ("Its worker stops its processes (SIGSTOP) within a second, wherever "
                      "it runs. It keeps its worker and lease, and its timeout's clock "
                      "stops; z again resumes it.")
        else:
            title, yes = f"Resume paused job {job_id}?", "Resume"
            detail = "Its worker continues its processes (SIGCONT) within a second."

        async def answer(confirmed: bool | None) -> None:
            if confirmed:
                result = await self.console.act(
                    lambda q: q.pause([job_id]) if stop else q.resume([job_id]))
                if result is not None:
                    self.notify(PAUSE_SAID[result[0][1]].format(id=job_id), timeout=4)

        self.console.push_screen(ConfirmDialog(
            title, one_line(job["command"], 70) + "\n\n" + detail, yes=yes), answer)


def released_notice(result: list[tuple[str, str, str | None]]) -> str:
    """'released 2 jobs', or what became of each when not all went pending."""
    if all(to == "pending" for _, to, _ in result):
        return f"released {plural(len(result), 'job')}: pending again"
    return "; ".join(f"{job_id} {to}" + (f" ({why})" if why else "")
                     for job_id, to, why in result[:3]) + (" …" if len(result) > 3 else "")
