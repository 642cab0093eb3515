"""`worker start`: keep N worker processes alive until told to stop.

Each worker is its own interpreter (spawned, not forked), so no database
connection or lock ever crosses a fork. The supervisor restarts a worker that
dies unexpectedly, rescues its job at once (no need to wait for the lease),
and on SIGTERM/SIGINT/SIGHUP asks every worker to finish its current job and
exit (SIGHUP: the terminal of a foreground pool was closed).
A second Ctrl+C (SIGINT) stops them now: each running job gets SIGTERM, SIGKILL
after a grace period, and goes back to the queue with its attempt not counted;
a third kills the workers at once (their jobs go back the same way).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from queuectl_tui.engine import DEFAULT_GRACE_S, Capacity, Queue, redact, schema_moved
from queuectl_tui.workers.pool_log import ERROR, WARNING, PoolLog
from queuectl_tui.workers.services.base import Service
from queuectl_tui.workers.services.checkpoint import Checkpointer
from queuectl_tui.workers.services.counts import CountsRefresher
from queuectl_tui.workers.services.hooks import HookRunner
from queuectl_tui.workers.services.pruner import Pruner
from queuectl_tui.workers.services.rescue import Rescuer
from queuectl_tui.workers.services.scheduler import Scheduler
from queuectl_tui.workers.services.unblocker import Unblocker
from queuectl_tui.workers.trouble import DB_TROUBLE
from queuectl_tui.workers.worker import new_worker_id

POLL_S = 0.1
SCHEMA_CHECK_S = 1.0  # a newer queuectl's migration stops the pool within this
FAST_CRASH_S = 2.0  # a worker dying sooner than this after start counts as a crash loop
MAX_RESTART_DELAY_S = 30.0
# A stop after the running jobs. SIGHUP is a closed terminal (a tmux pane, an ssh
# session): by default it would kill the pool and strand its jobs in processing.
GRACEFUL_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
    events: PoolLog = field(default_factory=PoolLog)  # its workers log the same way
    children: list[Child] = field(default_factory=list)
    stopping: int = 0  # 0 running, 1 graceful stop asked, 2 stop now, 3 killed
    queues: list[str] | None = None  # the queues its workers serve, earlier first; None: all
    metrics: tuple[int, str | None] | None = None  # serve /metrics on (port, host)
    capacity: Capacity | None = None  # what its jobs may use at once (engine/flow.py)
    memory_limits: str | None = None  # how runs' memory limits are enforced (limits.py)
    halted: str | None = None  # why the pool stops writing at once (file gone, newer schema)
    next_schema_check: float = 0.0  # monotonic
    rescuer: Rescuer = field(init=False)
    services: list[Service] = field(init=False)

    def __post_init__(self) -> None:
        """The pool's background duties, turned in this order on every pass."""
        self.rescuer = Rescuer(self.queue, self.events)
        self.services = [self.rescuer, *(service(self.queue, self.events) for service in (
            Checkpointer, CountsRefresher, HookRunner, Scheduler, Pruner, Unblocker))]

    def _spawn(self, crashes: int = 0) -> Child:
        worker_id = new_worker_id()
        proc = subprocess.Popen(
            [sys.executable, "-m", "queuectl_tui.workers.worker",
             "--id", worker_id, "--supervisor-pid", str(os.getpid()),
             *log_options(self.events.json, not self.events.jobs, self.queues),
             *(["--capacity", self.capacity.to_json()] if self.capacity else [])],
            stdin=subprocess.DEVNULL, env=target_env(self.target))
        return Child(worker_id, proc, time.monotonic(), crashes)

    def on_signal(self, signum: int, _frame: Any) -> None:
        """First signal: graceful. Only a further Ctrl+C (SIGINT) escalates:
        repeated SIGTERMs (a service manager, `worker stop` run twice) stay
        graceful."""
        if self.stopping == 0:
            self.stopping = 1
            self.events.pool("stopping", f"{signal.Signals(signum).name}: finishing current "
                             "jobs (Ctrl+C again to stop now)", signal=signal.Signals(signum).name)
            self._signal_children(signal.SIGTERM)
        elif signum != signal.SIGINT:
            return
        elif self.stopping == 1:
            self.stopping = 2
            self.events.pool("stopping", f"stopping now: running jobs get SIGTERM (SIGKILL "
                             f"after {DEFAULT_GRACE_S:g} s) and go back to the queue, attempt "
                             "not counted; Ctrl+C again to kill the workers at once",
                             signal="SIGINT", now=True)
            self._signal_children(signal.SIGUSR1)
        elif self.stopping == 2:
            self.stopping = 3
            self.events.pool("stopping", "killing the workers; their jobs go back to the queue",
                             WARNING, signal="SIGINT", kill=True)
            self._signal_children(signal.SIGKILL)

    def _signal_children(self, sig: int) -> None:
        for child in self.children:
            if child.proc.poll() is None:
                try:
                    child.proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    def run(self) -> int:
        metrics_server = self._serve_metrics()  # first: a port in use stops us before workers
        for signum in GRACEFUL_SIGNALS:
            signal.signal(signum, self.on_signal)
        for _ in range(self.count):
            if self.stopping:  # a stop during start-up: start no more
                break
            self.children.append(self._spawn())  # in the list at once: signals reach it
        pids = ", ".join(str(c.proc.pid) for c in self.children)
        workers = [c.worker_id for c in self.children]
        if self.stopping:
            self.events.pool("stopping", f"stop requested while starting; stopping "
                             f"{len(self.children)} worker(s) (pids {pids or 'none'})",
                             workers=workers)
            self._signal_children(signal.SIGTERM)
        else:
            self.events.pool("started", f"started {self.count} worker(s) on "
                             f"{redact(self.target)} (pids {pids}; workers "
                             f"{', '.join(workers)}); Ctrl+C to stop after current jobs",
                             workers=workers, database=redact(self.target))
            if self.capacity is not None:
                self.events.pool("capacity", f"capacity {self.capacity.describe()}; memory "
                                 f"limits by {self.memory_limits or 'nothing'}",
                                 capacity=json.loads(self.capacity.to_json()),
                                 memory_limits=self.memory_limits)
        for service in self.services:
            service.start()
        while self._busy():
            time.sleep(POLL_S)
            if self._must_halt():
                continue  # only waiting for the workers to exit now
            for i, child in enumerate(self.children):
                self.children[i] = self._check(child)
            for service in self.services:
                service.turn(self.stopping)
            if self.rescuer.pending and self.stopping and not self._alive():
                break  # stopping with the database down: the leases will bring them back
        if self.halted is None:
            for service in self.services:  # not into a file that is gone: hooks record their runs
                service.stop()
        if metrics_server is not None:
            metrics_server.shutdown()
        self.events.pool("stopped", "all workers stopped")
        return 1 if self.halted else 0

    def _must_halt(self, schema_now: bool = False) -> bool:
        """Every turn, before anything is written (one stat), the database file
        deleted or replaced under the pool, and every second (and whenever a
        worker exits in error) a newer queuectl's migration, stop it without
        restarting, rescuing, checkpointing or recording anything more (see
        Worker.file_gone and Worker.schema_moved); exit status 1."""
        if self.halted is None:
            reason = self.queue.opened.file_gone()
            if reason is None and (schema_now or time.monotonic() >= self.next_schema_check):
                self.next_schema_check = time.monotonic() + SCHEMA_CHECK_S
                try:
                    reason = schema_moved(self.queue.opened)
                except DB_TROUBLE:
                    reason = None  # the rescuer reports database trouble
            if reason is None:
                return False
            self.halted = reason
            self.events.pool("stopping", f"stopping: {reason}; nothing more is written to "
                             "it", ERROR, reason=reason)
            self.stopping = max(self.stopping, 1)
            self.rescuer.pending.clear()
            for child in self.children:
                child.restart_at = None
            self._signal_children(signal.SIGTERM)
        for child in self.children:
            child.reaped = child.reaped or child.proc.poll() is not None
        return True

    def _serve_metrics(self) -> Any:
        """/metrics from a thread of this process (engine/metrics.py; its
        collector opens its own connection in the serving thread)."""
        if self.metrics is None:
            return None
        from queuectl_tui.engine import serve_metrics  # only a pool that serves loads it
        server, url = serve_metrics(self.queue, *self.metrics)
        self.events.pool("metrics", f"serving metrics at {url}", url=url)
        return server

    def _busy(self) -> bool:
        """Whether the pool has anything left to look after. A child counts until
        its exit has been handled (`reaped`), not merely until it exits: one that
        dies between two turns must still be restarted and its job rescued, or the
        pool would end with the job left `processing` until its lease ran out."""
        return any(not c.reaped or c.restart_at is not None for c in self.children) \
            or bool(self.rescuer.pending)

    def _alive(self) -> bool:
        return any(c.proc.poll() is None for c in self.children)

    def _check(self, child: Child) -> Child:
        now = time.monotonic()
        if child.restart_at is not None:
            if self.stopping:
                child.restart_at = None
                return child
            if now >= child.restart_at:
                new = self._spawn(child.crashes)
                self.events.worker("replaced", child.worker_id, f"replaced by worker "
                                   f"{new.worker_id} (pid {new.proc.pid})",
                                   replaced_by=new.worker_id, pid=new.proc.pid)
                return new
            return child
        code = child.proc.poll()
        if code is None:
            return child
        if child.reaped:
            return child
        child.reaped = True
        if code != 0 and not self.stopping and self._must_halt(schema_now=True):
            return child  # it stopped for the pool's reason: not a death to restart
        if self.stopping >= 3 or code != 0:
            # Killed by us on purpose (third Ctrl+C): its job's attempt is not counted.
            self.rescuer.add(child.worker_id, self.stopping < 3)
        if code == 0 or self.stopping:
            return child  # a clean exit (stop requested) is not restarted
        crashes = child.crashes + 1 if now - child.started < FAST_CRASH_S else 0
        delay = min(MAX_RESTART_DELAY_S, 0.5 * 2 ** crashes) if crashes else 0.0
        self.events.worker("died", child.worker_id, f"died (pid {child.proc.pid}, "
                           f"{_describe(code)}); restarting in {delay:g} s", WARNING,
                           pid=child.proc.pid, exit=_describe(code), restart_in_s=delay)
        child.crashes, child.restart_at = crashes, now + delay
        return child


def target_env(target: str) -> dict[str, str]:
    """The environment for a child process that opens `target`.

    The database travels in QUEUECTL_DB, never on the command line: a
    PostgreSQL URL may carry a password, and every local user can read every
    process's arguments (`ps`), while /proc/PID/environ is the owner's alone.
    """
    return {**os.environ, "QUEUECTL_DB": target}


def log_options(json_lines: bool = False, quiet: bool = False,
                queues: list[str] | None = None) -> list[str]:
    """`--log-format json`, `--quiet` and `--queues` for a child that works and
    logs like this pool."""
    return ((["--log-format", "json"] if json_lines else []) + (["--quiet"] if quiet else [])
            + (["--queues", ",".join(queues)] if queues else []))


def spawn_detached(target: str, count: int, log_file: Path,
                   options: list[str] | None = None) -> subprocess.Popen:
    """Start `queuectl worker start --count N` in its own session, outliving the caller.

    `worker start --detach` and the console use this: such workers are ordinary
    supervised pools that keep running after the caller exits, and
    `worker stop` reaches them.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "queuectl_tui", "worker", "start", "--count", str(count),
             *(options or [])],
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
