"""The full-screen log viewer (`l` on a job): its whole log or one run, followed,
searched, wrapped, or handed to $PAGER.

The file is read a window at a time (`log_reader.LogWindow`) on a thread of
its own, so a log of any size costs a few megabytes and the keys never wait
for the disk. Every line is escaped as `queuectl show` escapes (see
safe_text). Where this host has no log file (a PostgreSQL queue whose workers
run elsewhere) the tails the database keeps are shown instead.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from typing import Callable, Iterable, Iterator

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static

from queuectl_tui.console.context import console_of
from queuectl_tui.console.log_reader import CHUNK, LogSource, LogWindow, log_source
from queuectl_tui.console.widgets.footer import Footer
from queuectl_tui.console.widgets.log_view import LogView
from queuectl_tui.errors import QueuectlError
from queuectl_tui.safe_text import output_line, printable

FOLLOW_CHUNKS = 16  # chunks read per look while following; past that, jump to the end
KEYS = "j/k g/G scroll · / n N search · f follow · w wrap · r runs · p pager · q back"


class LogViewerScreen(Screen):
    """One job's log; `r` steps through the whole log and each run."""

    BINDINGS = [
        Binding("escape,q", "close", "Back"),
        Binding("f", "follow", "Follow"),
        Binding("w", "wrap", "Wrap"),
        Binding("slash", "search", "Search"),
        Binding("n", "find(False)", "Next", show=False),
        Binding("N", "find(True)", "Previous", show=False),
        Binding("g,home", "top", "Top", show=False),
        Binding("G,end", "end", "End", show=False),
        Binding("r", "run", "Runs"),
        Binding("p", "pager", "$PAGER"),
        # A view's number closes the log first: the viewer is the job's, not the view's.
        Binding("1", "leave('jobs')", "Close, go to view", key_display="1-8"),
        *(Binding(str(n), f"leave('{name}')", show=False) for n, name in enumerate(
            ("workers", "dlq", "history", "config", "queues", "schedules", "trends"), 2)),
    ]
    DEFAULT_CSS = """
    LogViewerScreen #log-title { height: 1; background: $panel; padding: 0 1; }
    LogViewerScreen #log-body { height: 1fr; }
    LogViewerScreen #log-search { height: 3; border: tall $accent; }
    LogViewerScreen #log-status { height: 1; background: $boost; padding: 0 1; }
    """

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.source: LogSource | None = None
        self.window: LogWindow | None = None
        self.run_index = -1  # -1: the whole log; else an index into source.runs
        self.follow = False
        self.needle = ""
        self.message = ""  # the last search's outcome, or why nothing shows
        self._lock = threading.Lock()  # one read of the window at a time

    def compose(self) -> ComposeResult:
        yield Static("", id="log-title")
        yield LogView(id="log-body")
        yield Input(placeholder="search the log; enter finds, esc cancels", id="log-search")
        yield Static("", id="log-status")
        yield Footer(compact=True, show_command_palette=False)

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def on_mount(self) -> None:
        self.query_one("#log-search", Input).display = False
        self.view.focus()
        self._draw_status()
        self._open()
        interval = getattr(self.app, "refresh_interval", None)
        if interval:
            self.set_interval(interval, self.poll)

    # ------------------------------------------------------------ reading

    @work(exclusive=True, group="log-open")
    async def _open(self) -> None:
        """Find the job's log and runs (database thread), then its last lines."""
        try:
            self.source = await console_of(self).db.call(log_source, self.job_id)
        except QueuectlError as exc:
            self.message = str(exc)
            self._draw_status()
            return
        self.follow = self.source.state == "processing"
        self._new_window()

    def _new_window(self) -> None:
        source = self.source
        assert source is not None
        if source.size() == 0 and source.stored:
            data = source.stored.encode("utf-8", "surrogatepass")
            self.window = LogWindow(lambda s, n: data[s:s + n], lambda: len(data))
            self.message = "no log file on this host: the last lines the database keeps"
        else:
            run = source.runs[self.run_index] if self.run_index >= 0 else None
            self.window = LogWindow(source.read, source.size, run.start if run else 0,
                                    run.end if run else None)
        tail = self.follow or self.run_index < 0
        self._read(lambda w: w.load(None if tail else w.lo), "end" if tail else "start")

    @work(thread=True, group="log-read")
    def _read(self, op: Callable[[LogWindow], object], place: str = "keep",
              then: Callable[[object], None] | None = None) -> None:
        """Run `op` on the window (a thread: the file may be slow or huge), then
        show the lines, placed by `place`: "end", "start", "keep" (the same
        rows), or "shift" (the top line moved by the number `op` returned: lines
        read before it, or dropped before it). `then` gets what `op` returned."""
        window = self.window
        if window is None:
            return
        with self._lock:
            result = op(window)
            lines = list(window.lines)
        try:
            self.app.call_from_thread(self._show, window, lines, result, place, then)
        except RuntimeError:
            pass  # the console quit while this read

    @work(exclusive=True, group="log-state")
    async def _recheck(self) -> None:
        """A running job's state, each look: when it ends, its runs are read again
        (the last one is recorded now) and the title says how it ended."""
        source = self.source
        if source is None or source.state != "processing":
            return
        try:
            state = await console_of(self).db.call(
                lambda queue: queue.get(self.job_id).state)
            if state != "processing":
                fresh = await console_of(self).db.call(log_source, self.job_id)
                source.state, source.runs = fresh.state, fresh.runs
        except QueuectlError:
            return  # deleted meanwhile: what is held stays on screen
        self._draw_status()

    def _show(self, window: LogWindow, lines: list[str], result: object, place: str,
              then: Callable[[object], None] | None) -> None:
        if window is not self.window or not self.is_mounted:
            return  # another run was chosen meanwhile, or the viewer closed
        view = self.view
        if place == "shift" and isinstance(result, int):
            view.set_lines(lines, top_line=max(0, view.top_line() + result))
        elif place == "start":
            view.set_lines(lines, top_line=0)
        else:
            view.set_lines(lines, end=place == "end")
        self._draw_status()
        if then is not None:
            then(result)

    def poll(self) -> None:
        """The live look (each refresh interval): read what the job printed since;
        following, show the end."""
        if self.window is None:
            return
        self._recheck()
        follow = self.follow

        def more(window: LogWindow) -> int:
            dropped = 0
            for _ in range(FOLLOW_CHUNKS):
                if window.at_end:
                    return -dropped
                dropped += window.more_after()
            if follow:
                window.load(None)  # printing faster than read: jump to its end
            return -dropped

        if follow:
            self._read(more, "end")
        elif self.view.at_bottom:
            self._read(more, "shift")
        else:
            self._draw_status()

    def on_log_view_edge(self, event: LogView.Edge) -> None:
        """Scrolled to the edge of what is held: read the next chunk there."""
        window = self.window
        if window is None:
            return
        if event.end and not window.at_end:
            self._read(lambda w: -w.more_after(), "shift")
        elif not event.end and not window.at_start:
            self.follow = False
            self._read(lambda w: w.more_before(), "shift")
        elif not event.end:
            self._draw_status()

    # ------------------------------------------------------------ keys

    def action_close(self) -> None:
        search = self.query_one("#log-search", Input)
        if search.display:
            search.display = False
            self.view.focus()
            return
        self.app.pop_screen()

    def action_leave(self, view: str) -> None:
        """A view's number key: close the log, then show that view (going back to
        it later finds the view, not this log still open over it)."""
        self.app.pop_screen()
        console_of(self).action_view(view)

    def action_follow(self) -> None:
        self.follow = not self.follow
        if self.follow:
            self.action_end()
        self._draw_status()

    def action_wrap(self) -> None:
        self.view.set_wrap(not self.view.wrap)
        self._draw_status()

    def action_top(self) -> None:
        self.follow = False
        if self.window is not None and not self.window.at_start:
            self._read(lambda w: w.load(w.lo), "start")
        else:
            self.view.place(0)
        self._draw_status()

    def action_end(self) -> None:
        if self.window is not None and not self.window.at_end:
            self._read(lambda w: w.load(None), "end")
        else:
            self.view.place(end=True)

    def action_run(self) -> None:
        """The whole log, then each run in turn."""
        if self.source is None:
            return
        self.run_index = self.run_index + 1 if self.run_index + 1 < len(self.source.runs) \
            else -1
        self.follow = False
        self.view.marked = None
        self._new_window()

    def action_search(self) -> None:
        search = self.query_one("#log-search", Input)
        search.display = True
        search.value = self.needle
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.display = False
        self.view.focus()
        self.needle = event.value
        self.view.needle = self.needle
        self.view.marked = None
        self.view.refresh()
        if self.needle:
            self.action_find(False)

    def action_find(self, backwards: bool) -> None:
        """The next (previous) line holding the search: among the lines held,
        then on through the file (a megabyte at a time, on the reading thread)."""
        window, needle = self.window, self.needle
        if window is None or not needle:
            self.message = "no search yet: / searches"
            self._draw_status()
            return
        self.follow = False
        view = self.view
        start = view.marked if view.marked is not None else (
            view.top_line() if backwards else view.top_line() - 1)
        found = window.find(needle, start, backwards=backwards)
        if found is not None:
            self._mark(found)
            return
        fold = needle == needle.lower()
        raw = needle.encode("utf-8", "surrogatepass")
        source = self.source

        def seek(w: LogWindow) -> int | None:
            """Through the file past what is held; the window moves to the match."""
            if source is None:
                return None
            if backwards:
                at = None if w.at_start else source.find(raw, w.lo, w.start, backwards=True,
                                                          ignore_case=fold)
            else:
                at = None if w.at_end else source.find(raw, w.end, w.limit, ignore_case=fold)
            if at is None:
                return None
            w.load(at)
            return w.line_at(at)

        def done(line: object) -> None:
            if isinstance(line, int):
                self._mark(line)
            else:
                self.message = f"{printable(needle)} not found" + (
                    " before this line" if backwards else " after this line")
                self._draw_status()

        self.message = "searching…"
        self._draw_status()
        self._read(seek, "keep", then=done)

    def _mark(self, line: int) -> None:
        view = self.view
        view.marked = line
        view.show_line(line)
        view.refresh()
        self.message = ""
        self._draw_status()

    # ------------------------------------------------------------ $PAGER

    def action_pager(self) -> None:
        """The log (or the run) in $PAGER, escaped as here; the console waits."""
        source, window = self.source, self.window
        if source is None or window is None:
            return
        command = os.environ.get("PAGER") or "less"
        try:
            with self.app.suspend():
                outcome = pipe_to_pager(command, escaped_chunks(source.read, window.lo,
                                                                window.limit))
        except SuspendNotSupported:
            outcome = "this terminal cannot hand the screen to a pager"
        if outcome:
            self.notify(outcome, severity="warning", timeout=5, markup=False)

    # ------------------------------------------------------------ header and status

    def _draw_status(self) -> None:
        title = Text()
        title.append(printable(self.job_id), style="bold")
        source, window = self.source, self.window
        if source is not None:
            title.append(f" · {source.state}")
            run = source.runs[self.run_index] if self.run_index >= 0 else None
            title.append(f" · run {run.number} ({self.run_index + 1} of {len(source.runs)})"
                         if run else f" · whole log ({len(source.runs)} runs)"
                         if source.runs else " · whole log")
        title.append(f" · follow {'on' if self.follow else 'off'}",
                     style="bold #5fd75f" if self.follow else "")
        title.append(f" · wrap {'on' if self.view.wrap else 'off'}")
        if window is not None and window.lines:
            title.append(f" · line {self.view.top_line() + 1:,}/{len(window.lines):,}"
                         f" held of {size_text(window.limit - window.lo)}", style="dim")
            if not window.at_start:
                title.append(" · earlier lines above", style="dim")
        self.query_one("#log-title", Static).update(title)
        status = Text()
        if window is not None and not window.lines and not self.message:
            status.append("no output " + ("yet" if source and source.state == "processing"
                                          else "recorded") + " · ", style="bold")
        if self.message:
            status.append(self.message + " · ", style="bold #ffaf00")
        if self.needle:
            status.append(f"/{printable(self.needle)} · ", style="#ffd75f")
        status.append(KEYS, style="dim")
        self.query_one("#log-status", Static).update(status)


def size_text(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return ""


def escaped_chunks(read: Callable[[int, int], bytes], start: int, end: int) -> Iterator[bytes]:
    """The bytes [start, end) of a log as escaped lines, a chunk at a time (a log of
    any size is streamed, never held)."""
    pos, rest = start, b""
    while pos < end:
        data = read(pos, min(CHUNK, end - pos))
        if not data:
            break
        pos += len(data)
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        if len(rest) >= CHUNK:  # a line longer than a chunk: pass its piece on
            lines.append(rest)
            rest = b""
        yield "".join(output_line(raw.decode("utf-8", "replace")) + "\n"
                      for raw in lines).encode()
    if rest:
        yield (output_line(rest.decode("utf-8", "replace")) + "\n").encode()


def pipe_to_pager(command: str, chunks: Iterable[bytes]) -> str | None:
    """Run `command` with `chunks` on its standard input; None when it ran, else
    why not. Quitting the pager early ends the stream (a broken pipe is fine)."""
    try:
        pager = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE)
    except (OSError, ValueError) as exc:
        return f"cannot run $PAGER {command!r}: {exc}"
    try:
        assert pager.stdin is not None
        for chunk in chunks:
            pager.stdin.write(chunk)
        pager.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    pager.wait()
    return None
