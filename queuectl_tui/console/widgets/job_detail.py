"""The detail pane: every field of the selected job, its last error and its output.

Every text a job's owner chose (id, queue, command, error, output, names) is
shown through `safe_text.printable`, the escaping `queuectl show` uses.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.binding import Binding
from textual.widgets import Static

from queuectl_tui.console.reads import Detail
from queuectl_tui.console.formatting import (STATE_STYLE, exit_text, needs_text, one_line,
                                             progress_text, span, stamp, state_text,
                                             two_columns)
from queuectl_tui.console.widgets.output_tail import OutputTail
from queuectl_tui.console.widgets.repaint import show
from queuectl_tui.engine import FINAL, format_size, progress_of
from queuectl_tui.safe_text import printable


def env_of(job: dict[str, Any]) -> dict[str, str]:
    return json.loads(job["env"]) if job.get("env") else {}


FIELD_WIDTH = 48  # the fields pane's widest text (app.tcss: 50 wide, padding 1)
RESULT_SHOWN = 300  # characters of a result (`queuectl result ID` prints it whole)


def fields_table(job: dict[str, Any], now: float, width: int = FIELD_WIDTH) -> Group:
    duration = None
    if job["started_at"] is not None:
        end = job["finished_at"] if job["state"] != "processing" else now
        if end is not None and end >= job["started_at"]:
            duration = span(end - job["started_at"])
    needs = needs_text(job.get("cpus"), job.get("mem"), job.get("gpus"))
    progress = progress_text(job, now, max(5, min(24, width - 20)))
    rows = [
        ("id", Text(printable(job["id"]))),
        ("state", state_text(job["state"]) if not paused(job) else
         Text.assemble(state_text(job["state"]), ", ", state_text("paused"))),
        *([("paused", Text(pause_text(job, now)))] if pause_text(job, now) else []),
        *([("progress", progress)] if progress is not None else []),
        *([("message", Text(printable(job["progress_message"])))]
          if progress is not None and job.get("progress_message") else []),
        *([("result", Text(printable(one_line(job["result"], RESULT_SHOWN))))]
          if job.get("result") is not None else []),
        # why a due job waits (a rate, its key's limit, ...): console/reads.py waiting_note
        *([("waiting", Text(printable(job["waiting"]), style="#ffaf00"))]
          if job.get("waiting") else []),
        ("queue", Text(printable(job.get("queue") or "default"))),
        *([("key", Text(printable(job["key"])))] if job.get("key") else []),
        *([("needs", Text(needs))] if needs else []),
        *([("devices", Text("GPU " + printable(job["devices"])))]
          if job.get("devices") and job["state"] == "processing" else []),
        ("command", Text(printable(job["command"]))),
        ("attempts", Text(f"{job['attempts']} of {job['max_retries'] + 1} "
                          f"(max retries {job['max_retries']})")),
        ("priority", Text(str(job["priority"]))),
        ("timeout", Text(timeout_text(job))),
        *([("snoozes", Text(f"{job['snoozes']} in this run series"))]
          if job.get("snoozes") else []),
        ("run at", Text(stamp(job["run_at"], now))),
        ("created", Text(stamp(job["created_at"], now))),
        ("updated", Text(stamp(job["updated_at"], now))),
        ("started", Text(stamp(job["started_at"], now))),
        ("finished", Text(stamp(job["finished_at"], now))),
        ("duration", Text(duration or "-")),
        ("exit code", Text(exit_text(job["exit_code"]) or "-")),
        ("worker", Text(printable(job["worker_id"] or "-"))),
        *([("waits for", after_text(job["after"]))] if job.get("after") else []),
        *([("unique key", Text(printable(job["unique_key"])))] if job.get("unique_key") else []),
        ("directory", Text(printable(job.get("cwd") or "-"))),
        ("environment", Text(printable(" ".join(f"{k}={v}" for k, v in env_of(job).items())
                                       or "-"))),
    ]
    if job.get("schedule"):  # made by a schedule: which, and for which tick
        tick = job.get("schedule_tick")
        after_queue = [label for label, _ in rows].index("queue") + 1
        rows.insert(after_queue, ("schedule", Text(printable(job["schedule"]) + (
            f", tick {stamp(tick, now)}" if tick is not None else ", run now by hand"))))
    parts: list[Any] = [two_columns(rows, width=width)]
    if job.get("stranded"):  # processing, but nothing runs it (console/reads.py)
        parts.append(Text("\n" + job["stranded"], style="bold #ffaf00"))
    if job.get("last_error"):
        parts.append(Text("\nlast error", style="bold #ff5f5f"))
        parts.append(Text(printable(job["last_error"]), style="#ff875f"))
    if job.get("attempts_log"):
        parts.append(Text("\nruns (each one's output follows its header in the log)",
                          style="bold #87afd7"))
        parts.append(attempts_table(job["attempts_log"]))
        limited = [run["mem_limit_by"] for run in job["attempts_log"] if run.get("mem_limit_by")]
        if limited:
            parts.append(Text(f"memory limit enforced by {limited[-1]}", style="dim"))
    return Group(*parts)


def paused(job: dict[str, Any]) -> bool:
    """A running job whose processes are stopped (`queuectl pause`, `z`)."""
    return job["state"] == "processing" and job.get("paused_at") is not None


def pause_text(job: dict[str, Any], now: float) -> str:
    """Since when it is paused and how long it was before; that a pause is
    asked and not done yet; or how long a run was paused in all ("": never)."""
    before = job.get("paused_for") or 0.0
    if paused(job):
        return f"since {stamp(job['paused_at'], now)}" + (
            f"; {span(before)} before" if before else "")
    if job["state"] == "processing" and job.get("pause_requested"):
        return "asked: its worker stops it within a second"
    return f"{span(before)} in this run" if before else ""


def timeout_text(job: dict[str, Any]) -> str:
    """"10s", "10s + 5s extended" (`queuectl extend`), "none"."""
    if not job["timeout"]:
        return "none"
    extended = job.get("extended_by")
    return span(job["timeout"]) + (f" + {span(extended)} extended" if extended else "")


def after_text(after: list[dict[str, Any]]) -> Text:
    """Each dependency with its state (a finished one no longer blocks); `a` jumps
    to the first that has not completed."""
    text = Text()
    for i, dep in enumerate(after):
        if i:
            text.append(", ")
        text.append(printable(dep["id"]))
        text.append(f" {dep['state'] or 'gone'}", style=STATE_STYLE.get(dep["state"] or "", "dim"))
    return text


def attempts_table(runs: list[dict[str, Any]]) -> Table:
    """Every run of the job's life, requeues included: how each one ended, and
    (when its worker measured them) its peak memory and CPU time."""
    measured = any(run.get("peak_mem") is not None or run.get("cpu_s") is not None
                   for run in runs)
    grid = Table.grid(padding=(0, 1))
    for _ in range(5 if measured else 3):
        grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for run in runs:
        took = "-" if run["duration"] is None else span(run["duration"])
        usage = [Text(usage_cell("mem", run.get("peak_mem"), format_size)),
                 Text(usage_cell("cpu", run.get("cpu_s"), span))] if measured else []
        grid.add_row(Text(f"#{run['number']}"), Text(run_end(run)), Text(took), *usage,
                     Text(printable(run["worker_id"] or "-")))
    return grid


def usage_cell(name: str, value: Any, shown: Any) -> str:
    """"mem 512M", "cpu 1.2s"; "mem -" when the run's worker did not measure it."""
    return f"{name} {'-' if value is None else shown(value)}"


def run_end(run: dict[str, Any]) -> str:
    """How a run ended, each word once: "exit 0", "timeout SIGTERM", "rescued"."""
    reason = run["reason"] or "exit"
    code = exit_text(run["exit_code"])
    if reason == "exit":
        return f"exit {code or '-'}"
    return f"{reason} {code}".rstrip()


def no_output(job: dict[str, Any]) -> str:
    """What an empty output pane says: "yet" only while more may come (a job
    that is over, run or not, never will print)."""
    if job["state"] in FINAL:
        return "(no output)"
    return "(no output yet)" if job["state"] == "processing" or job["started_at"] is None \
        else "(no output)"


class FieldsScroll(VerticalScroll):
    """The fields, scrolled by the keyboard once focused (tab from the list): a
    blocked job's dependencies or a long error sit below the fold."""

    BINDINGS = [
        Binding("j,down", "scroll_down", "Scroll", show=False),
        Binding("k,up", "scroll_up", "Scroll up", show=False),
        Binding("g,home", "scroll_home", "Top", show=False),
        Binding("G,end", "scroll_end", "Bottom", show=False),
        Binding("tab,escape", "back", "Back to list"),
    ]

    def action_back(self) -> None:
        """Focus the list again (tab from the list came here)."""
        found = self.screen.query("#table")
        (found.first() if found else self.screen).focus()


class JobDetail(Horizontal):
    """Fields on the left; the end of the output on the right, appended as a
    running job prints (the whole log is the log viewer's, `l`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id: str | None = None
        self.log_offset: int | None = None  # log bytes already shown; None: none yet
        self.mode: str | None = None  # "log" (following the log file) or "tail" (stored)
        self.text = ""
        self.shown: dict[str, Any] | None = None  # the job whose fields are on screen
        self._fields_shape: tuple | None = None  # what the fields' height follows
        self._now = 0.0  # the time the fields were last drawn at

    def compose(self) -> ComposeResult:
        with FieldsScroll(id="fields-scroll"):
            yield Static("", id="fields")
        yield OutputTail(id="output")

    def fields_width(self) -> int:
        """The fields' text width: the pane's, once laid out (narrower than
        FIELD_WIDTH on a narrow terminal, where the output takes half)."""
        width = self.query_one("#fields-scroll").scrollable_content_region.width
        return min(FIELD_WIDTH, width) if width > 8 else FIELD_WIDTH

    def on_resize(self) -> None:
        if self.shown is not None:
            self._draw_fields(self.shown, self._now)

    def _draw_fields(self, job: dict[str, Any], now: float) -> None:
        width = self.fields_width()
        talks = (progress_of(job) is not None, job.get("progress_message"),
                 job.get("result"))  # rows of their own that wrap (fields_table)
        shape = (job["id"], job["state"], job.get("last_error"), job.get("stranded"),
                 job.get("waiting"), bool(pause_text(job, now)), bool(job.get("snoozes")),
                 talks,
                 len(job.get("attempts_log") or ()), len(job.get("after") or ()), width)
        self._now = now
        self._show_fields(fields_table(job, now, width), shape,
                          key=(shape, int(now), job["updated_at"]))

    def _show_fields(self, content: Any, shape: tuple | None = None, key: Any = None) -> None:
        """The fields, laid out again only when their shape (the job and which
        sections it has) changed: the same job ticking by keeps its height."""
        same = shape is not None and shape == self._fields_shape
        self._fields_shape = shape
        show(self.query_one("#fields", Static), content, key=key, fixed_size=same)

    def want(self) -> tuple[str | None, int | None]:
        """What to fetch next: the job shown and how much of its log is on screen."""
        return self.job_id, self.log_offset

    def select(self, job_id: str | None) -> None:
        if job_id != self.job_id:
            self.job_id, self.log_offset, self.mode = job_id, None, None
            self.query_one("#output", OutputTail).clear()
            if job_id is None:
                self.shown = None
                self._show_fields("")

    def show(self, detail: Detail | None, now: float, *, asked_offset: int | None) -> None:
        out = self.query_one("#output", OutputTail)
        if detail is None:
            return
        if detail.job is None:
            self._show_fields(Text(f"job {printable(self.job_id or '')} is gone (deleted)",
                                   style="dim"))
            return
        if detail.job["id"] != self.job_id or asked_offset != self.log_offset:
            return  # the selection moved on while this was read
        job = detail.job
        self._draw_fields(job, now)
        self.shown = job
        running = job["state"] == "processing"
        if detail.from_log:
            out.set_title("output (log, following)" if running else "output (log)",
                          no_output(job))
            # A read that does not start where the last one ended (the first look
            # at a long log, or a job printing faster than it is read) starts
            # mid-line: the pane starts at its first whole line.
            started = detail.offset - len(detail.output.encode("utf-8", "surrogatepass"))
            gap = started > (asked_offset or 0)
            if self.mode != "log":
                out.clear()
                self.mode = "log"
            out.append(detail.output, after_gap=gap)
            self.log_offset = detail.offset
        else:
            out.set_title("output (last lines stored)", no_output(job))
            if self.mode != "tail" or detail.output != self.text:
                out.set_text(detail.output)
                self.mode, self.text = "tail", detail.output
