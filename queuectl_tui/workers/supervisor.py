"""`worker start`: keep N worker processes alive until told to stop.

Each worker is its own interpreter (spawned, not forked), so no database
connection or lock ever crosses a fork. The supervisor restarts a worker that
dies unexpectedly, rescues its job at once (no need to wait for the lease),
and on SIGTERM/SIGINT asks every worker to finish its current job and exit.
A second Ctrl+C (SIGINT) stops them now: each running job gets SIGTERM, SIGKILL
after a grace period, and goes back to the queue with its attempt not counted;
a third kills the workers at once (their jobs go back the same way).
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

import peewee as pw

from queuectl_tui.engine import registry
from queuectl_tui.engine.db import redact
from queuectl_tui.engine.queue import DEFAULT_GRACE_S, Queue
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
    reaped: bool = False  # its exit has been handled (job rescue queued)


@dataclass
class Supervisor:
    queue: Queue
    target: str
    count: int
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    children: list[Child] = field(default_factory=list)
    stopping: int = 0  # 0 running, 1 graceful stop asked, 2 stop now, 3 killed
    # Dead workers whose job is still to be taken back (worker id, attempt counted?):
    # the database may be down for a while.
    unrescued: list[tuple[str, bool]] = field(default_factory=list)
    trouble: str | None = None  # the database problem being ridden out, said once

    def _spawn(self, crashes: int = 0) -> Child:
        worker_id = new_worker_id()
        proc = subprocess.Popen(
            [sys.executable, "-m", "queuectl_tui.workers.worker",
             "--id", worker_id, "--supervisor-pid", str(os.getpid())],
            stdin=subprocess.DEVNULL, env=target_env(self.target))
        return Child(worker_id, proc, time.monotonic(), crashes)

    def on_signal(self, signum: int, _frame: Any) -> None:
        """First signal: graceful. Only a further Ctrl+C (SIGINT) escalates:
        repeated SIGTERMs (a service manager, `worker stop` run twice) stay
        graceful."""
        if self.stopping == 0:
            self.stopping = 1
            self.log(f"{signal.Signals(signum).name}: finishing current jobs "
                     "(Ctrl+C again to stop now)")
            self._signal_children(signal.SIGTERM)
        elif signum != signal.SIGINT:
            return
        elif self.stopping == 1:
            self.stopping = 2
            self.log(f"stopping now: running jobs get SIGTERM (SIGKILL after "
                     f"{DEFAULT_GRACE_S:g} s) and go back to the queue, attempt not counted; "
                     "Ctrl+C again to kill the workers at once")
            self._signal_children(signal.SIGUSR1)
        elif self.stopping == 2:
            self.stopping = 3
            self.log("killing the workers; their jobs go back to the queue")
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
        for _ in range(self.count):
            if self.stopping:  # a stop during start-up: start no more
                break
            self.children.append(self._spawn())  # in the list at once: signals reach it
        pids = ", ".join(str(c.proc.pid) for c in self.children)
        if self.stopping:
            self.log(f"stop requested while starting; stopping {len(self.children)} "
                     f"worker(s) (pids {pids or 'none'})")
            self._signal_children(signal.SIGTERM)
        else:
            self.log(f"started {self.count} worker(s) on {redact(self.target)} (pids {pids}); "
                     "Ctrl+C to stop after current jobs")
        while any(c.proc.poll() is None or c.restart_at is not None for c in self.children) \
                or self.unrescued:
            time.sleep(POLL_S)
            for i, child in enumerate(self.children):
                self.children[i] = self._check(child)
            self._rescue_pending()
            if self.unrescued and self.stopping and not self._alive():
                break  # stopping with the database down: the leases will bring them back
        self.log("all workers stopped")
        return 0

    def _alive(self) -> bool:
        return any(c.proc.poll() is None for c in self.children)

    def _rescue_pending(self) -> None:
        """Take back the jobs of dead workers. The database may be down or locked
        for a while: the pool stays up, says so once, and tries again."""
        while self.unrescued:
            worker_id, counted = self.unrescued[0]
            try:
                rescued = self.queue.rescue(worker_id=worker_id, counted=counted)
                registry.gone(worker_id)
            except (pw.DatabaseError, pw.InterfaceError) as exc:
                text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                if text != self.trouble:
                    self.trouble = text
                    self.log(f"database trouble: {text}; the pool keeps running and retries")
                if not self.queue.db.in_transaction():
                    self.queue.db.close()
                return
            if self.trouble is not None:
                self.log("database reachable again")
                self.trouble = None
            self.unrescued.pop(0)
            if rescued:
                self.log(f"rescued {', '.join(rescued)} from worker {worker_id}")

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
        if child.reaped:
            return child
        child.reaped = True
        if self.stopping >= 3 or code != 0:
            # Killed by us on purpose (third Ctrl+C): its job's attempt is not counted.
            self.unrescued.append((child.worker_id, self.stopping < 3))
        if code == 0 or self.stopping:
            return child  # a clean exit (stop requested) is not restarted
        crashes = child.crashes + 1 if now - child.started < FAST_CRASH_S else 0
        delay = min(MAX_RESTART_DELAY_S, 0.5 * 2 ** crashes) if crashes else 0.0
        self.log(f"worker {child.worker_id} (pid {child.proc.pid}) died with "
                 f"{_describe(code)}; restarting in {delay:g} s")
        child.crashes, child.restart_at = crashes, now + delay
        return child


def target_env(target: str) -> dict[str, str]:
    """The environment for a child process that opens `target`.

    The database travels in QUEUECTL_DB, never on the command line: a
    PostgreSQL URL may carry a password, and every local user can read every
    process's arguments (`ps`), while /proc/PID/environ is the owner's alone.
    """
    return {**os.environ, "QUEUECTL_DB": target}


def spawn_detached(target: str, count: int, log_file: Path) -> subprocess.Popen:
    """Start `queuectl worker start --count N` in its own session, outliving the caller.

    `worker start --detach` and the console use this: such workers are ordinary
    supervised pools that keep running after the caller exits, and
    `worker stop` reaches them.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "queuectl_tui", "worker", "start", "--count", str(count)],
            stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True,
            env=target_env(target))
    finally:
        os.close(fd)


def wait_until_ready(queue: Queue, proc: subprocess.Popen, count: int,
                     timeout: float = 30.0) -> list[int]:
    """The pids of a detached pool's workers once all have registered.

    Raises QueuectlError if the pool exits or is not ready in time.
    """
    from queuectl_tui.errors import QueuectlError
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise QueuectlError(f"the worker pool exited at start with {_describe(proc.returncode)}")
        pids = [w["pid"] for w in queue.live_workers() if w["supervisor_pid"] == proc.pid]
        if len(pids) >= count:
            return pids
        time.sleep(POLL_S)
    raise QueuectlError(f"the worker pool (pid {proc.pid}) is running but its workers did "
                        f"not all register within {timeout:g} s")


def _describe(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
