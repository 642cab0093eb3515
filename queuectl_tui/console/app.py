"""The console app: seven views as modes, database threads, a one-second refresh.

`run_console` is what `queuectl` (no arguments) and `queuectl tui` call.
Tests build `ConsoleApp` with a fake clock, no refresh timer and the database
calls run inline, so every picture shows exactly one known state.

Faults keep the console answering: a failed refresh leaves the last rows up,
dimmed, with a notice of the whole cause and since when they are stale; a
server that cannot be reached is tried again after 1, 2, 4, 8 then every 15 s;
a write waiting for a lock says so and Esc gives it up; a database file deleted
or replaced is said so, and ctrl+r opens the path again.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from typing import Any, Callable, TypeVar

from rich.text import Text
from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.widgets import Input

from queuectl_tui.clock import Clock, Ids
from queuectl_tui.console import reads
from queuectl_tui.console.collector import IdleCollector
from queuectl_tui.console.commands import ConsoleCommands
from queuectl_tui.console.database import Database
from queuectl_tui.console.faults import Backoff, FileGone, MissingDatabase
from queuectl_tui.console.read_only import ReadOnlyGate, from_environment
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.screens.base import ViewScreen
from queuectl_tui.console.screens.config import ConfigScreen
from queuectl_tui.console.screens.dlq import DlqScreen
from queuectl_tui.console.screens.enqueue import EnqueueDialog
from queuectl_tui.console.screens.help import HelpScreen
from queuectl_tui.console.screens.history import HistoryScreen
from queuectl_tui.console.screens.jobs import JobsScreen
from queuectl_tui.console.screens.queues import QueuesScreen
from queuectl_tui.console.screens.schedules import SchedulesScreen
from queuectl_tui.console.screens.trends import TrendsScreen
from queuectl_tui.console.screens.workers import WorkersScreen
from queuectl_tui.console.trail import Trail
from queuectl_tui.engine import GaveUp, StateCounts, Unreachable, redact
from queuectl_tui.errors import QueuectlError

T = TypeVar("T")
SLOW_VIEW_S = 0.05  # a view read slower than this is not repeated every second...
VIEW_EVERY_WHEN_SLOW = 5  # ...but every fifth tick (keys and actions still read at once)
WAIT_NOTICE_S = 0.3  # a write running longer than this is said to be waiting
SLOW_READ_NOTICE_S = 3.0  # a refresh unanswered this long is said to be waiting


class ConsoleApp(ReadOnlyGate, App):
    """queuectl's console over one database (the engine's proxy allows one per process)."""

    TITLE = "queuectl"
    CSS_PATH = "app.tcss"
    MODES = {"jobs": JobsScreen, "workers": WorkersScreen, "dlq": DlqScreen,
             "history": HistoryScreen, "config": ConfigScreen, "queues": QueuesScreen,
             "schedules": SchedulesScreen, "trends": TrendsScreen}
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS = [
        Binding("1", "view('jobs')", "Jobs", show=False),
        Binding("2", "view('workers')", "Workers", show=False),
        Binding("3", "view('dlq')", "DLQ", show=False),
        Binding("4", "view('history')", "History", show=False),
        Binding("5", "view('config')", "Config", show=False),
        Binding("6", "view('queues')", "Queues", show=False),
        Binding("7", "view('schedules')", "Schedules", show=False),
        Binding("8", "view('trends')", "Trends", show=False),
        Binding("backspace", "back", "Back", show=False),
        Binding("n", "enqueue", "New job"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        # Only while they apply (check_action): otherwise Esc is the view's own.
        Binding("escape", "give_up", "Give up", priority=True),
        Binding("ctrl+r", "reopen", "Reopen database"),
    ]

    def __init__(self, db_arg: str | None = None, *, clock: Clock | None = None,
                 ids: Ids | None = None, refresh_interval: float | None = 1.0,
                 threaded: bool = True, steady: bool = False, read_only: bool = False) -> None:
        super().__init__()
        self.read_only = read_only  # read_only.py: no key changes anything
        # No animations: a tab's sliding underline repainted the screen for 0.3 s
        # after every state-tab and view switch, and the keys waited behind it.
        self.animation_level = "none"
        self.steady = steady  # pictures: no blinking cursors
        self.db = Database(db_arg, clock=clock, ids=ids, threaded=threaded, read_only=read_only)
        self.refresh_interval = refresh_interval
        self.summary: Summary | None = None
        self.problem: str | None = None
        self.hint: str | None = None
        self.stale_since: float | None = None  # wall time of the last good refresh's data
        self.file_gone = False  # the SQLite file was deleted or replaced under us
        self.backoff = Backoff()  # tries of a server that cannot be reached
        self._toasted = False  # a toast said the writes now running wait for a lock
        self._footer_writes = False  # the footer was last told that writes are running
        self._read_since: float | None = None  # monotonic start of the refresh read in flight
        self._refreshing = False
        self._again = False
        self._want_view = False
        self._want_summary = False
        self._ticks = 0
        self._view_cost = 0.0  # seconds the last view read took on the database thread
        self.refresh_count = 0  # refreshes started so far
        self.collector = IdleCollector(self.db.clock.monotonic)  # started by a live console
        self.applying = 0  # the number of the refresh being shown
        self.trail = Trail()  # where jumps came from: esc or backspace goes back

    @property
    def refreshing(self) -> bool:
        return self._refreshing

    @property
    def target(self) -> str:
        return self.db.target

    def on_mount(self) -> None:
        self.set_class(self.few_colours(), "-ansi16")  # app.tcss: a readable cursor row
        self.switch_mode("jobs")
        if self.refresh_interval:
            self.set_interval(self.refresh_interval, self._tick)
            self.collector.start()

    def few_colours(self) -> bool:
        """A real terminal of 8 or 16 colours, where the cursor row's blue turns
        cyan under bold white. Never headless: pictures must not follow $TERM."""
        return not self.is_headless and self.console.color_system in ("standard", "windows")

    def on_unmount(self) -> None:
        self.collector.stop()
        self.db.close()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent) and not event.is_forwarded:
            self.collector.saw_input()  # straight from the terminal: a person is at it
        await super().on_event(event)

    # ------------------------------------------------------------ refresh

    @property
    def view(self) -> ViewScreen | None:
        """The view under any dialogs."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, ViewScreen):
                return screen
        return None

    def _tick(self) -> None:
        """The live refresh. A view whose read is slow (a rare text filter scanning a
        big table) is re-read every few ticks only; the header still updates each time."""
        self._ticks += 1
        if self.db.writes or self._read_since is not None:
            self.show_notice()
        self.collector.tick(can_freeze=len(self.screen_stack) == 1)
        every = 1 if self._view_cost < SLOW_VIEW_S else VIEW_EVERY_WHEN_SLOW
        self.request_refresh(view=self._ticks % every == 0)

    def request_refresh(self, view: bool = True, summary: bool = True) -> None:
        """Refresh soon; calls while one is running fold into one more. A key
        asks for its view only (`summary=False`): the header's reads are the
        tick's and an action's, and a key never waits for them."""
        self._want_view = self._want_view or view
        self._want_summary = self._want_summary or summary
        if self._refreshing:
            self._again = True
            return
        self._refreshing = True  # from now: a second request folds into this one
        self._refresh_loop()

    @work(exclusive=False, group="refresh")
    async def _refresh_loop(self) -> None:
        self._refreshing = True
        try:
            self._again = True
            while self._again:
                self._again = False
                with_view, self._want_view = self._want_view, False
                with_summary, self._want_summary = self._want_summary, False
                await self.refresh_now(with_view, with_summary)
        finally:
            self._refreshing = False

    async def refresh_now(self, with_view: bool = True, with_summary: bool = True) -> None:
        """One round trip: the summary and (unless told not to) the current view's data."""
        view = self.view
        if view is None or self.leaving(view):
            return  # no view, or its widgets are being taken away
        if not view.is_mounted or self.screen is not view:
            # Switched to but still being built: its widgets are not there to read
            # from or show in. Under a dialog (help, enqueue, a question): repainting
            # it would repaint the dimmed screen behind the dialog every second.
            # Either way its resume (mounted, or the dialog closed) asks again.
            with_view = False
        if self.summary is None or self.problem is not None:
            with_summary = True  # nothing to show the view's rows against yet
        if not (with_view or with_summary):
            return
        if self.backoff.wait_left(self.db.clock.monotonic()) > 0:
            self.show_notice()  # not yet: the countdown moves, the rows stay stale
            return
        self.refresh_count += 1
        number = self.refresh_count
        load = view.loader() if with_view else None
        self._read_since = self.db.clock.monotonic()
        try:
            snap = await self.db.call(reads.refresh, self.db.counter if with_summary else None,
                                      load)
        except QueuectlError as exc:
            self._refresh_failed(exc)
        else:
            self._read_since = None
            self.problem, self.hint, self.stale_since = None, None, None
            self.backoff.succeeded()
            if snap.summary is not None:
                self.summary = snap.summary
            if load is not None:
                self._view_cost = snap.view_seconds
            if load is not None and view is self.view and self._can_show(view) \
                    and self.summary is not None:
                self.applying = number
                view.apply(snap.view, self.summary)
        current = self.view
        if current is not None and self._can_show(current) and current is self.screen:
            current.show_summary(self.summary, self.problem, self.hint)
        if self.problem is None and self.db.counter.due:
            self._count_states()

    def _refresh_failed(self, exc: QueuectlError) -> None:
        """Keep the last rows (stale from now on) and say why, whole."""
        self._read_since = None
        self.problem = str(exc)
        self.hint = self._hint_for(exc)
        if isinstance(exc, MissingDatabase):
            self.summary = None
        if self.summary is not None and self.stale_since is None:
            self.stale_since = self.summary.now
        if self.file_gone != isinstance(exc, FileGone):
            self.file_gone = not self.file_gone
            self.refresh_bindings()  # ctrl+r shows in the footer while the file is gone
        if isinstance(exc, Unreachable):
            self.backoff.failed(self.db.clock.monotonic())
        else:
            self.backoff.succeeded()  # the next tick tries again

    # ------------------------------------------------------------ the notice

    def notice(self) -> Text | None:
        """The notice above the footer: a write waiting for a lock, and why the
        rows are stale (the whole cause: it wraps rather than being cut)."""
        text = Text()
        waiting = self.db.waiting_writes(WAIT_NOTICE_S)
        if waiting:
            what = "a change" if waiting == 1 else f"{waiting} changes"
            text.append(f"⏳ {what}: waiting for the lock on {redact(self.target)}… "
                        "(Esc gives up)", style="bold #ffd75f")
        since = self._read_since
        unanswered = 0.0 if since is None else self.db.clock.monotonic() - since
        if unanswered > SLOW_READ_NOTICE_S:  # PostgreSQL: a table locked by a migration...
            if text.plain:
                text.append("\n")
            text.append(f"⏳ {redact(self.target)} has not answered for {unanswered:.0f}s "
                        "(a lock, or a slow server); the rows are as they were",
                        style="bold #ffd75f")
        if self.problem is not None and self.summary is not None:
            if text.plain:
                text.append("\n")
            text.append(f"⚠ {self.problem}", style="bold #ff5f5f")
            text.append(f"\n{self._stale_line()}", style="#ff875f")
        return text if text.plain else None

    def _stale_line(self) -> str:
        since = self.stale_since or self.db.clock.now()
        line = f"stale since {time.strftime('%H:%M:%S', time.localtime(since))}"
        left = self.backoff.wait_left(self.db.clock.monotonic())
        if self.file_gone:
            return line + (" · ctrl+r opens the file now at that path"
                           if self._path_exists() else
                           " · no file at that path now (ctrl+r lets go of the old one)")
        if left > 0:
            return line + f" · reconnecting in {math.ceil(left)}s"
        return line + " · trying again"

    def _path_exists(self) -> bool:
        return os.path.exists(os.path.expanduser(self.target))

    def show_notice(self) -> None:
        """Repaint the current view's header and notice (countdowns, waits).
        Over a dialog the notice is hidden: a toast says the write waits."""
        waiting = self.db.waiting_writes(WAIT_NOTICE_S)
        if waiting and not self._toasted and not isinstance(self.screen, ViewScreen):
            self.notify(f"waiting for the lock on {redact(self.target)}… (Esc gives up)",
                        severity="warning", timeout=4)
        self._toasted = bool(self.db.writes) and (waiting > 0 or self._toasted)
        if self._footer_writes != bool(self.db.writes):
            self._footer_writes = not self._footer_writes
            self.refresh_bindings()  # "esc Give up" comes and goes with the writes
        current = self.view
        if current is not None and self._can_show(current) and current is self.screen:
            current.show_summary(self.summary, self.problem, self.hint)

    def _can_show(self, view: ViewScreen) -> bool:
        """Mounted, attached, and neither it nor the app closing: a read that
        finishes as the console quits has nowhere to go (its widgets are gone)."""
        return view.is_attached and view.is_mounted and not self.leaving(view)

    def leaving(self, view: ViewScreen) -> bool:
        """The console quitting or the view closing. On the way out Textual takes
        a screen's widgets away while the screen still counts as mounted; it
        sets `_pruning` on every node (after clearing the app's `is_running`),
        so a refresh that starts then must not look for the view's table."""
        return (not self.is_running or self._exit or view._pruning or view._closing
                or view._closed)

    @work(exclusive=False, group="count")
    async def _count_states(self) -> None:
        """The full count of every state, on the slow thread: the header says
        "counting" until it comes, and keys never wait for it."""
        try:
            baseline = await self.db.call_slow("states", StateCounts.full_count)
        except QueuectlError:
            return  # the next refresh says what is wrong, and asks again
        if baseline is not None:
            self.db.counter.adopt(baseline, self.db.clock.monotonic())
            self.request_refresh(view=False)

    def slow_read(self, name: str, fn: Callable[..., Any], max_age: float) -> Any:
        """The last value of a slow read (None before the first), read again on
        the slow thread when older than `max_age` seconds; a new value refreshes
        the view. For views whose figures may be a few seconds old (per-queue
        counts), never for what a key asks to see."""
        age = self.db.slow_age(name)
        if age is None or age >= max_age:
            self._slow_read(name, fn)
        found = self.db.slow_results.get(name)
        return None if found is None else found[0]

    @work(exclusive=False, group="slow")
    async def _slow_read(self, name: str, fn: Callable[..., Any]) -> None:
        try:
            result = await self.db.call_slow(name, fn)
        except QueuectlError:
            return
        if result is not None:
            self.request_refresh(summary=False)

    def _hint_for(self, exc: QueuectlError) -> str | None:
        if isinstance(exc, MissingDatabase) and not self.read_only:
            return (f"Add a job to create it: press n, or run\n"
                    f"  queuectl --db {self.target} enqueue 'echo hello'\n"
                    f"or fill it with examples: queuectl --db {self.target} demo")
        return None

    async def act(self, fn: Callable[..., T], *args: Any, done: str | None = None,
                  create: bool = False, read: bool = False) -> T | None:
        """Run an operator action on the write thread (`read`: the read thread);
        refused ones become a notice. Await it from a worker, never from a
        message handler: a write may wait for a lock (see `push_screen`)."""
        if read:
            call = self.db.call(fn, *args, create=create)
        else:
            self.set_timer(WAIT_NOTICE_S + 0.05, self.show_notice)
            call = self.db.write(fn, *args, create=create)
        try:
            result = await call
        except GaveUp as exc:
            self.notify(str(exc), title="Gave up", severity="warning", timeout=6)
            return None
        except QueuectlError as exc:
            self.notify(str(exc), title="Not done", severity="error", timeout=8)
            self.request_refresh()
            return None
        finally:
            self.show_notice()
        if done:
            self.notify(done, timeout=3)
        self.request_refresh()
        return result

    def push_screen(self, screen: Any, callback: Any = None,
                    wait_for_dismiss: bool = False) -> Any:
        """A dialog's answer that is a coroutine (a confirmed delete, a stop)
        runs as a worker: Textual calls a dismiss callback from the message
        loop that pushed the dialog, the app's, and a write awaited there (one
        waiting 10 s for another process's lock) held every key until it ended."""
        if callback is not None and inspect.iscoroutinefunction(callback):
            answer = callback

            def callback(result: Any) -> None:
                self.run_worker(answer(result), group="action")

        return super().push_screen(screen, callback, wait_for_dismiss)  # type: ignore[arg-type]

    def steady_inputs(self, root: Any) -> None:
        """In pictures a blinking cursor would be on or off by chance: keep it on."""
        if self.steady:
            for box in root.query(Input):
                box.cursor_blink = False

    # ------------------------------------------------------------ actions

    def action_view(self, name: str) -> None:
        if self.current_mode != name:
            self.switch_mode(name)

    def show_jobs_filtered(self, text: str) -> None:
        """Jobs, every state, under this filter (a queue's row, a job's id)."""
        self.jump("jobs", text, state="all")

    def jump(self, mode: str, filter_text: str, state: str | None = None) -> None:
        """Show `mode` under a filter, remembering the view left (see trail.py)."""
        view = self.view
        if view is not None:
            self.trail.push(view.where(), mode)
        if self.current_mode != mode:
            self.switch_mode(mode)
        screen = self.screen
        if state is not None:
            screen.show_state(state)  # type: ignore[attr-defined]
        screen.set_filter(filter_text)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        """Back to where the last jump came from, with its filter and cursor."""
        place = self.trail.pop()
        if place is None:
            self.notify("nothing to go back to (esc and backspace return after a jump)",
                        timeout=3)
            return
        if self.current_mode != place.mode:
            self.switch_mode(place.mode)
        self.screen.return_to(place)  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Esc and ctrl+r are the app's only while they apply (and only then in
        the footer); a read-only console's writes are neither (read_only.py)."""
        if self.refuses(action):
            return False
        if action == "give_up":  # over a dialog, Esc closes it (and its write gives up)
            return bool(self.db.writes) and isinstance(self.screen, ViewScreen)
        if action == "reopen":
            return self.file_gone
        return True

    def action_give_up(self) -> None:
        """Esc while a write waits for a lock: it stops waiting, nothing written."""
        self.db.give_up()

    @work(group="reopen", exclusive=True)
    async def action_reopen(self) -> None:
        """ctrl+r after the database file was deleted or replaced: close it and
        open whatever is at the path now (or say there is nothing there yet)."""
        await self.db.reopen()
        self.summary, self.problem, self.hint = None, None, None
        self.stale_since, self.file_gone = None, False
        self.refresh_bindings()
        self.notify(f"let go of the old file; reading {self.target} afresh", timeout=3)
        self.request_refresh()

    def action_enqueue(self) -> None:
        self.push_screen(EnqueueDialog())

    def action_help(self) -> None:
        """The help for this view, built the first time and kept: composing and
        styling it again on every `?` was most of the time it took to open."""
        if isinstance(self.screen, HelpScreen):
            return
        name = f"help-{self.current_mode}"
        if not self.is_screen_installed(name):
            self.install_screen(HelpScreen(self.current_mode), name)
        self.push_screen(name)


def run_console(db_arg: str | None, read_only: bool = False) -> int:
    """Open the console on `db_arg` (or $QUEUECTL_DB, or the default database),
    read-only if asked here or by $QUEUECTL_READ_ONLY."""
    ConsoleApp(db_arg, read_only=read_only or from_environment()).run()
    return 0
