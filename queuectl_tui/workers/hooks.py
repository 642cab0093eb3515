"""The supervisor's finish-hook duty: run what engine/hooks.py queued.

A hook is a shell command in its own session and process group, with the job's
id, state, exit code, queue and attempt in its environment and stdin from
/dev/null. It is run by `runner.run_command`, as a job is: its output is read
into bounded tails (the pool's log gets one escaped, clipped line per hook:
PoolLog.hook), and at `finish-hook-timeout` its group gets SIGTERM, then
SIGKILL. Whatever a hook does (fail, hang, crash, print 50 MB) is logged and
changes no job.

Hooks keep up with the pool: one dispatcher thread does all of their database
work and up to `finish-hook-concurrency` threads each wait on one hook. The
dispatcher sleeps until the database says a hook was queued (the wake-up idle
workers use: the WAL's inotify on SQLite, LISTEN on PostgreSQL) or a hook
ended, then in one transaction forgets the ended runs and takes as many new
ones as there are free slots. A row is taken with a lease longer than the
timeout, so a supervisor that dies mid-hook leaves it to another (a hook runs
at least once; it should not mind running twice). Such a death counts as a
try; after engine/hooks.py's MAX_TRIES the hook is dropped. A pool that stops
on purpose does not count against a hook: it keeps running hooks while its
workers finish, and for up to STOP_GRACE_S after, then stops the ones still
running and hands them back untried, for the next pool to run from the start.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import peewee as pw

from queuectl_tui.engine import config, hooks
from queuectl_tui.engine import HOOKS_CHANNEL, backend_for
from queuectl_tui.engine.queue import Queue
from queuectl_tui.workers.pool_log import ERROR, WARNING, PoolLog
from queuectl_tui.workers.runner import Abort, RunResult, describe_exit, run_command

SLACK_S = 10.0  # lease beyond the timeout: its stop (1 s), settling, a busy database
STOP_GRACE_S = 5.0  # a stopping pool's hooks: how long after its workers are done
WAIT_S = 0.1  # the dispatcher's longest sleep: how soon it sees a stop or a lapsed lease
RETRY_S = 0.5  # after database trouble (the supervisor's rescuer reports it)
TICK_S = 0.1  # how often a running hook looks for a stop
ABORT_GRACE_S = 1.0  # SIGTERM to SIGKILL for a hook stopped with its pool
SETTINGS_S = 1.0  # the timeout and concurrency are re-read this often
MAX_SLOTS = 64  # the highest `finish-hook-concurrency` (engine/config.py)


class HookRunner:
    """Runs finish hooks from threads of the supervisor: `start`, then `stop`
    (graceful: what runs may finish for a while) or `stop_now` then `stop`."""

    def __init__(self, queue: Queue, events: PoolLog,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.events = events
        self.clock = clock
        self.owner = f"{queue.host}:{os.getpid()}"
        self._lock = threading.Lock()
        self._wake = threading.Event()  # a hook ended or the stop moved on
        self._ended: list[int] = []  # runs to forget (ran, failed, timed out, dropped)
        self._back: list[int] = []  # runs stopped with the pool, to hand back untried
        self._running = 0
        self._phase = "run"  # run; drain (the pool is stopping); stop (nothing new)
        self._drain_until = 0.0
        self._abort: Abort | None = None  # what running hooks are told once stopping
        self._settings = (30.0, 1, -1e9)  # timeout, concurrency, read at
        # Threads are made as hooks need them, up to the config's highest value;
        # how many run at once is the dispatcher's to bound (the config's value).
        self._slots = ThreadPoolExecutor(MAX_SLOTS, "hook")
        self._thread = threading.Thread(target=self._dispatch, name="hooks", daemon=True)

    # ---------------------------------------------------------------- the supervisor's side

    def start(self) -> None:
        self._thread.start()

    def turn(self, stopping: int) -> None:
        """Called from the supervisor's loop: a stop now (second Ctrl+C) stops
        running hooks at once; a graceful stop lets them run on."""
        if stopping >= 2:
            self.stop_now()

    def stop_now(self) -> None:
        """Running hooks get SIGTERM (SIGKILL after ABORT_GRACE_S) and go back to
        the outbox untried; nothing new is taken."""
        with self._lock:
            if self._phase != "stop":
                self._phase = "stop"
                self._abort = Abort("stopped", "stopped with the pool", ABORT_GRACE_S)
        self._wake.set()

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """The pool's workers are done: hooks queued or running still run for up
        to `grace` seconds, then the rest go back to the outbox, untried."""
        with self._lock:
            if self._phase == "run":
                self._phase = "drain"
                self._drain_until = self.clock() + grace
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(grace + ABORT_GRACE_S + 15)
        self.stop_now()  # should the dispatcher be stuck: no hook outlives the pool
        self._slots.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------- the dispatcher thread

    def _dispatch(self) -> None:
        """The dispatcher thread. Whatever goes wrong in it is said and tried
        again: hooks must not stop for the rest of the pool's life (what it held
        comes back when its leases run out)."""
        while True:
            try:
                self._loop()
                return
            except Exception as exc:  # noqa: BLE001 - a bug or an OS error, said once a try
                self.events.pool("trouble", f"finish hooks: {type(exc).__name__}: {exc}; "
                                 "trying again", ERROR, error=str(exc))
                time.sleep(RETRY_S)

    def _loop(self) -> None:
        backend = backend_for(self.queue.db)  # its own wake-up state, on this thread's connection
        listening = False
        while True:
            self._wake.clear()  # before the look: a hook ending after it wakes the wait below
            with self._lock:
                ended, back, self._ended, self._back = self._ended, self._back, [], []
                if self._phase == "drain" and self.clock() >= self._drain_until:
                    self._phase = "stop"
                    self._abort = Abort("stopped", "stopped with the pool", ABORT_GRACE_S)
                phase, running = self._phase, self._running
            try:
                if not listening:
                    backend.listen(HOOKS_CHANNEL)
                    listening = True
                timeout, concurrency = self._read_settings()
                free = max(0, concurrency - running) if phase != "stop" else 0
                now = self.queue.clock.now()
                want = free and hooks.waiting(self.queue.db, now)
                taken = self._exchange(ended, back, free if want else 0, timeout, now) \
                    if ended or back or want else []
            except (pw.DatabaseError, pw.InterfaceError):
                with self._lock:  # settled next time
                    self._ended[:0], self._back[:0] = ended, back
                if not self.queue.db.in_transaction():
                    self.queue.db.close()
                listening = False
                if phase == "stop" and running == 0:
                    break  # their leases run out and the next pool runs them
                self._wake.wait(RETRY_S)
                continue
            for run in taken:
                self._start(run, timeout)
            if phase == "stop" and running == 0 and not taken:
                break
            if phase == "drain" and running == 0 and not want and not taken:
                with self._lock:
                    self._phase = "stop"  # nothing left to run: stop early
                continue
            if taken and len(taken) == free:
                continue  # every slot filled: there may be more waiting
            if phase == "stop" or len(taken) >= free:
                self._wake.wait(WAIT_S)  # only an ended hook can change anything
            else:
                backend.wait_for_change(WAIT_S, time.sleep)  # a hook queued, or a lapse
        if not self.queue.db.is_closed():
            self.queue.db.close()  # this thread's connection

    def _read_settings(self) -> tuple[float, int]:
        timeout, concurrency, read_at = self._settings
        if self.clock() - read_at >= SETTINGS_S:
            timeout = float(config.get("finish-hook-timeout"))
            concurrency = int(config.get("finish-hook-concurrency"))
            self._settings = (timeout, concurrency, self.clock())
        return timeout, concurrency

    def _exchange(self, ended: list[int], back: list[int], limit: int, timeout: float,
                  now: float) -> list[Any]:
        """One transaction: settle what ended, take up to `limit` new runs. Runs
        whose runners died too often are dropped here."""
        db = self.queue.db
        with db.atomic():
            hooks.settle(db, self.owner, ended, back)
            taken = hooks.take(db, self.owner, now, limit, timeout + SLACK_S,
                               self.queue.backend.lock_rows) if limit else []
        runs = []
        for run in taken:
            if run.tries > hooks.MAX_TRIES:
                self.events.hook(run, "dropped", f"dropped: its runner died {run.tries - 1} "
                                 "times while running it (SIGKILL, a crash; perhaps the "
                                 "hook's doing)", level=WARNING)
                with self._lock:
                    self._ended.append(run.seq)
            else:
                runs.append(run)
        return runs

    def _start(self, run: Any, timeout: float) -> None:
        with self._lock:
            self._running += 1
        try:
            self._slots.submit(self._run, run, timeout)
        except RuntimeError:  # shut down meanwhile: the lease brings it back
            with self._lock:
                self._running -= 1

    # ---------------------------------------------------------------- a slot thread

    def _run(self, run: Any, timeout: float) -> None:
        settle = "ended"  # or "back" (untried), or "" (left to its lease)
        try:
            result = run_command(run.command, timeout=timeout, open_log=None,
                                 env=hooks.env_for(run), tick=lambda: self._abort,
                                 first_tick=TICK_S, tick_every=TICK_S)
            if self._report(run, result, timeout):
                settle = "back"
        except OSError as exc:  # /bin/sh cannot be started: as a failed hook
            self.events.hook(run, "unstarted", f"could not start: {exc.strerror or exc}",
                             level=WARNING)
        except Exception as exc:  # noqa: BLE001 - ours, not the hook's: as a runner's death
            settle = ""  # its lease runs out, counted: a run that always does this is dropped
            self.events.hook(run, "unstarted", f"could not be run here ({type(exc).__name__}: "
                             f"{exc}); it is tried again later", level=ERROR)
        finally:
            with self._lock:
                if settle:
                    (self._back if settle == "back" else self._ended).append(run.seq)
                self._running -= 1
            self._wake.set()

    def _report(self, run: Any, result: RunResult, timeout: float) -> bool:
        """Log how the hook ended; True if it goes back to the outbox untried."""
        if result.ended == "stopped":
            self.events.hook(run, "stopped", "stopped with the pool; it runs again when a "
                             "pool runs (not counted as a failure of the hook)",
                             result=result)
            return True
        if result.ended == "timeout":
            self.events.hook(run, "timeout", f"timed out; killed after {timeout:g} s "
                             "(finish-hook-timeout)", result=result, level=WARNING)
        elif result.exit_code != 0:
            self.events.hook(run, "failed", f"failed: {describe_exit(result.exit_code, '')}",
                             result=result, level=WARNING)
        elif result.stdout_bytes or result.stderr_bytes:
            self.events.hook(run, "ok", result=result)
        return False
