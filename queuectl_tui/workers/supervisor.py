"""`worker start`: keep N worker processes alive until told to stop.

Each worker is its own interpreter (spawned, not forked), so no database
connection or lock ever crosses a fork. The supervisor restarts a worker that
dies unexpectedly, rescues its job at once (no need to wait for the lease),
and on SIGTERM/SIGINT asks every worker to finish its current job and exit.
A second Ctrl+C (SIGINT) stops them now: their jobs go back to the queue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from queuectl_tui.engine import registry
from queuectl_tui.engine.db import redact
from queuectl_tui.engine.queue import Queue
from queuectl_tui.workers.worker import new_worker_id

POLL_S = 0.1
FAST_CRASH_S = 2.0  # a worker dying sooner than this after start counts as a crash loop
MAX_RESTART_DELAY_S = 30.0


@dataclass
class Child:
    worker_id: str
    proc: subprocess.Popen
    started: float
    crashes: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    queue: Queue
    target: str
    count: int
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    children: list[Child] = field(default_factory=list)
    stopping: int = 0  # 0 running, 1 graceful stop asked, 2 forced

    def _spawn(self, crashes: int = 0) -> Child:
        worker_id = new_worker_id()
        proc = subprocess.Popen(
            [sys.executable, "-m", "queuectl_tui.workers.worker", "--db", self.target,
             "--id", worker_id, "--supervisor-pid", str(os.getpid())],
            stdin=subprocess.DEVNULL)
        return Child(worker_id, proc, time.monotonic(), crashes)

    def on_signal(self, signum: int, _frame: Any) -> None:
        """First signal: graceful. Only a second Ctrl+C (SIGINT) forces: repeated
        SIGTERMs (a service manager, `worker stop` run twice) stay graceful."""
        force = self.stopping >= 1 and signum == signal.SIGINT
        if self.stopping == 0:
            self.stopping = 1
            self.log(f"{signal.Signals(signum).name}: finishing current jobs "
                     "(Ctrl+C again to stop now)")
            self._signal_children(signal.SIGTERM)
        elif force and self.stopping < 2:
            self.stopping = 2
            self.log("stopping now; running jobs go back to the queue")
            self._signal_children(signal.SIGKILL)

    def _signal_children(self, sig: int) -> None:
        for child in self.children:
            if child.proc.poll() is None:
                try:
                    child.proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        self.children = [self._spawn() for _ in range(self.count)]
        pids = ", ".join(str(c.proc.pid) for c in self.children)
        self.log(f"started {self.count} worker(s) on {redact(self.target)} (pids {pids}); "
                 "Ctrl+C to stop after current jobs")
        while any(c.proc.poll() is None or c.restart_at is not None for c in self.children):
            time.sleep(POLL_S)
            for i, child in enumerate(self.children):
                self.children[i] = self._check(child)
        self.log("all workers stopped")
        return 0

    def _check(self, child: Child) -> Child:
        now = time.monotonic()
        if child.restart_at is not None:
            if self.stopping:
                child.restart_at = None
                return child
            if now >= child.restart_at:
                return self._spawn(child.crashes)
            return child
        code = child.proc.poll()
        if code is None:
            return child
        if self.stopping >= 2 or code != 0:
            rescued = self.queue.rescue(worker_id=child.worker_id)
            if rescued:
                self.log(f"rescued {', '.join(rescued)} from worker {child.worker_id}")
            registry.gone(child.worker_id)
        if code == 0 or self.stopping:
            return child  # a clean exit (stop requested) is not restarted
        crashes = child.crashes + 1 if now - child.started < FAST_CRASH_S else 0
        delay = min(MAX_RESTART_DELAY_S, 0.5 * 2 ** crashes) if crashes else 0.0
        self.log(f"worker {child.worker_id} (pid {child.proc.pid}) died with "
                 f"{_describe(code)}; restarting in {delay:g} s")
        child.crashes, child.restart_at = crashes, now + delay
        return child


def spawn_detached(target: str, count: int, log_file: Path) -> int:
    """Start `queuectl worker start --count N` in its own session, outliving the caller.

    The console uses this: workers it starts are ordinary supervised pools that
    keep running after the console quits, and `worker stop` reaches them.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "queuectl_tui", "worker", "start", "--db", target,
             "--count", str(count)],
            stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True)
    finally:
        os.close(fd)
    return proc.pid


def _describe(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
