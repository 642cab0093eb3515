"""The supervisor's finish-hook duty: run what engine/hooks.py queued.

A hook is a shell command in its own process group, with the job's id, state,
exit code, queue and attempt in its environment, stdin from /dev/null and its
output in the pool's log. It runs beside the pool's jobs, never blocks the
supervisor's loop, is killed (the whole group) after `finish-hook-timeout`, and
whatever it does (fail, hang, crash) is logged and changes no job. A row is taken
with a lease longer than the timeout, so a supervisor that dies mid-hook leaves
it to another (a hook runs at least once; it should not mind running twice).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable

import peewee as pw

from queuectl_tui.engine import config, hooks
from queuectl_tui.engine.queue import Queue

EVERY_S = 0.2
MAX_RUNNING = 4  # hooks at once per pool: a slow hook must not pile up processes
SLACK_S = 30.0  # lease beyond the timeout, for killing and recording


@dataclass
class Running:
    run: Any
    proc: subprocess.Popen
    deadline: float
    killed: bool = False


class HookRunner:
    def __init__(self, queue: Queue, log: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.log = log
        self.clock = clock
        self.owner = f"{queue.host}:{os.getpid()}"
        self.running: list[Running] = []
        self.next_turn = 0.0

    def turn(self, take: bool = True) -> None:
        """Reap finished hooks, kill late ones, start new ones unless the pool is
        stopping (called from the supervisor's loop)."""
        self._reap()
        now = self.clock()
        if not take or now < self.next_turn or len(self.running) >= MAX_RUNNING:
            return
        self.next_turn = now + EVERY_S
        try:
            timeout = float(config.get("finish-hook-timeout"))
            taken = hooks.take(self.queue.db, self.owner, self.queue.clock.now(),
                               MAX_RUNNING - len(self.running), timeout + SLACK_S,
                               self.queue.backend.lock_rows)
        except (pw.DatabaseError, pw.InterfaceError):
            return  # the rescuer reports database trouble; try again next turn
        for run in taken:
            if run.tries > hooks.MAX_TRIES:
                self.log(f"{hooks.describe(run)} dropped: its runner stopped "
                         f"{run.tries - 1} times while running it")
                self._forget(run)
                continue
            self._start(run, timeout)

    def _start(self, run: Any, timeout: float) -> None:
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", "--", run.command], stdin=subprocess.DEVNULL,
                env={**os.environ, **hooks.env_for(run)}, start_new_session=True)
        except OSError as exc:
            self.log(f"{hooks.describe(run)} could not start: {exc.strerror or exc}")
            self._forget(run)
            return
        self.running.append(Running(run, proc, self.clock() + timeout))

    def _reap(self) -> None:
        now = self.clock()
        for item in list(self.running):
            code = item.proc.poll()
            if code is None:
                if now >= item.deadline and not item.killed:
                    self._kill(item)
                continue
            self.running.remove(item)
            if item.killed:
                self.log(f"{hooks.describe(item.run)} timed out; killed")
            elif code != 0:
                self.log(f"{hooks.describe(item.run)} failed with exit code {code}")
            self._forget(item.run)

    def _kill(self, item: Running) -> None:
        item.killed = True
        try:
            os.killpg(item.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _forget(self, run: Any) -> None:
        try:
            hooks.done(run.seq)
        except (pw.DatabaseError, pw.InterfaceError):
            pass  # its lease runs out and it runs again: at least once

    def stop(self, grace: float = 5.0) -> None:
        """The pool is stopping: running hooks get `grace` seconds, then are killed
        and left queued (their lease runs out; the next pool runs them again)."""
        deadline = self.clock() + grace
        while self.running and self.clock() < deadline:
            self._reap()
            if self.running:
                time.sleep(0.05)
        for item in self.running:
            self._kill(item)
            item.proc.wait()
            self.log(f"{hooks.describe(item.run)} stopped with the pool; it runs again later")
        self.running.clear()
