"""Run one job: `/bin/sh -c` in its own process group, output captured, timeout enforced.

stdout and stderr are read together through a selector, so a job that fills
one pipe while we wait on the other cannot deadlock us, and memory stays
bounded whatever the job prints: every chunk goes straight to the job's log
file and only a short tail of each stream is kept.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Callable

from queuectl_tui.engine.logs import TAIL_CHARS, decode_tail

CHUNK = 65536
TAIL_BYTES = TAIL_CHARS * 4
KILL_GRACE_S = 1.0  # SIGTERM first, then SIGKILL the whole group this much later
DRAIN_AFTER_EXIT_S = 0.2  # a background child may hold the pipes; don't wait for it


@dataclass
class RunResult:
    exit_code: int | None
    error: str | None  # None means success
    stdout_tail: str
    stderr_tail: str
    ended: str = "exit"  # exit, timeout, cancelled, stopped, lost (engine/attempts.py)
    log_offset: int | None = None  # where this run's output starts in the log


@dataclass(frozen=True)
class Abort:
    """Stop the running command: SIGTERM to its group now, SIGKILL after `grace`."""

    ended: str  # why: timeout, cancelled, stopped, lost
    message: str
    grace: float = KILL_GRACE_S


class _Tail:
    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * TAIL_BYTES:
            del self.data[:-TAIL_BYTES]

    def text(self) -> str:
        return decode_tail(bytes(self.data))


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_command(command: str, *, timeout: float | None,
                open_log: Callable[[], int], log_header: bytes = b"",
                on_start: Callable[[int], None] = lambda pid: None,
                tick: Callable[[], Abort | None] = lambda: None, first_tick: float = 1.0,
                tick_every: float = 1.0, env: dict[str, str] | None = None,
                cwd: str | None = None) -> RunResult:
    """Run `command` to the end; `tick` is called periodically and may ask to abort.

    An abort (cancelled, stopped, claim lost) and the timeout end the whole
    process group the same way: SIGTERM, then SIGKILL after a grace period,
    during which output is still read and `tick` still called (so the lease is
    kept while a job shuts down).
    The loop follows the process, not its pipes: a job that closes stdout and
    stderr (`exec >/dev/null 2>&1`) still has its lease renewed and its timeout
    enforced, because the process's exit is watched through a pidfd.
    """
    try:
        # `--`: a command that starts with "-" is a command, not an option of sh.
        proc = subprocess.Popen(
            ["/bin/sh", "-c", "--", command], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            env=None if env is None else {**os.environ, **env}, cwd=cwd)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        if cwd is None:
            raise
        return RunResult(exit_code=None, error=f"cannot run in {cwd}: {exc.strerror}",
                         stdout_tail="", stderr_tail="")
    on_start(proc.pid)
    output = _Output(open_log, log_header,
                     {proc.stdout.fileno(): _Tail(), proc.stderr.fileno(): _Tail()})
    sel = selectors.DefaultSelector()
    for fd in output.tails:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    exit_fd = _pidfd(proc.pid)
    if exit_fd is not None:
        sel.register(exit_fd, selectors.EVENT_READ)
    start = time.monotonic()
    deadline = start + timeout if timeout else None
    next_tick = start + first_tick
    exited_at: float | None = None
    abort: Abort | None = None
    kill_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
                if exit_fd is not None:
                    sel.unregister(exit_fd)  # stays readable: stop waking on it
            if exited_at is not None and (not output.open_fds(sel)
                                          or now >= exited_at + DRAIN_AFTER_EXIT_S):
                break  # the shell is done; leftovers holding the pipes are killed below
            if exited_at is None:
                if kill_at is not None and now >= kill_at:
                    kill_group(proc.pid)
                    kill_at = None
                if abort is None and deadline is not None and now >= deadline:
                    abort = Abort("timeout", f"timed out after {timeout:g} s")
                    kill_at = _begin_stop(proc, abort)
                if now >= next_tick:
                    next_tick = now + tick_every
                    asked = tick()
                    if asked is not None and abort is None:
                        abort = asked
                        kill_at = _begin_stop(proc, abort)
            wait = next_tick - now
            if deadline is not None and exited_at is None and abort is None:
                wait = min(wait, deadline - now)
            if kill_at is not None:
                wait = min(wait, kill_at - now)
            if exited_at is not None:
                wait = min(wait, exited_at + DRAIN_AFTER_EXIT_S - now)
            elif exit_fd is None:
                wait = min(wait, 0.05)  # no pidfd: look at the process often
            for key, _ in sel.select(max(0.0, min(wait, 0.5))):
                if key.fd != exit_fd:
                    output.read(sel, key.fd)
        code = proc.wait()
    finally:
        kill_group(proc.pid)  # nothing the job started outlives it
        sel.close()
        if exit_fd is not None:
            os.close(exit_fd)
        proc.stdout.close()
        proc.stderr.close()
        output.close()
    out, err = (t.text() for t in output.tails.values())
    if output.log_error:
        sep = "\n" if err and not err.endswith("\n") else ""
        err += f"{sep}[queuectl: output not saved to the log: {output.log_error}]\n"
    if abort is None:
        return RunResult(exit_code=code, error=describe_exit(code, err), stdout_tail=out,
                         stderr_tail=err, log_offset=output.log_offset)
    return RunResult(exit_code=code, error=abort.message, stdout_tail=out, stderr_tail=err,
                     ended=abort.ended, log_offset=output.log_offset)


def _begin_stop(proc: subprocess.Popen, abort: Abort) -> float:
    """SIGTERM the group now; returns when to SIGKILL it."""
    kill_group(proc.pid, signal.SIGTERM)
    return time.monotonic() + max(0.0, abort.grace)


class _Output:
    """Where a run's output goes: a bounded tail per stream, and the log file.

    The log is opened at the first byte (most jobs print nothing). If it cannot
    be written (a full disk, an unwritable folder) the job keeps running and
    keeps its tails; the reason is reported with the result instead of
    crashing the worker.
    """

    def __init__(self, open_log: Callable[[], int], header: bytes,
                 tails: dict[int, _Tail]) -> None:
        self._open_log = open_log
        self._header = header
        self.tails = tails
        self.log_fd: int | None = None
        self.log_error: str | None = None
        self.log_offset: int | None = None  # where this run's header starts

    def open_fds(self, sel: selectors.BaseSelector) -> bool:
        return any(fd in sel.get_map() for fd in self.tails)

    def read(self, sel: selectors.BaseSelector, fd: int) -> None:
        chunk = os.read(fd, CHUNK)
        if not chunk:
            sel.unregister(fd)
            return
        self.tails[fd].add(chunk)
        self._write(chunk)

    def _write(self, chunk: bytes) -> None:
        if self.log_error is not None:
            return
        try:
            if self.log_fd is None:
                self.log_fd = self._open_log()
                self.log_offset = os.lseek(self.log_fd, 0, os.SEEK_END)
                os.write(self.log_fd, self._header)
            os.write(self.log_fd, chunk)
        except OSError as exc:
            self.log_error = exc.strerror or str(exc)

    def close(self) -> None:
        if self.log_fd is not None:
            os.close(self.log_fd)


def _pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when `pid` exits (Linux 5.3+)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def describe_exit(code: int, stderr_tail: str) -> str | None:
    """None for success; otherwise one line saying why, with the last stderr line."""
    if code == 0:
        return None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        what = f"killed by {name}"
    elif code == 127:
        what = "exit code 127 (command not found)"
    elif code == 126:
        what = "exit code 126 (not executable)"
    else:
        what = f"exit code {code}"
    last = next((line.strip() for line in reversed(stderr_tail.splitlines()) if line.strip()), "")
    return f"{what}: {last[:300]}" if last else what
