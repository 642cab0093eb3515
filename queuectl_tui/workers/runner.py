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
                tick: Callable[[], bool] = lambda: True, first_tick: float = 1.0,
                tick_every: float = 1.0, env: dict[str, str] | None = None) -> RunResult:
    """Run `command` to the end; `tick` is called periodically and may return False to abort.

    Abort (the claim was lost) and timeout both kill the whole process group.
    """
    proc = subprocess.Popen(
        ["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
        env=None if env is None else {**os.environ, **env})
    on_start(proc.pid)
    tails = {proc.stdout.fileno(): _Tail(), proc.stderr.fileno(): _Tail()}
    log_fd: int | None = None
    sel = selectors.DefaultSelector()
    for fd in tails:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    start = time.monotonic()
    deadline = start + timeout if timeout else None
    next_tick = start + first_tick
    exited_at: float | None = None
    reason: str | None = None
    try:
        while sel.get_map():
            now = time.monotonic()
            wait = next_tick - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if exited_at is not None:
                wait = min(wait, exited_at + DRAIN_AFTER_EXIT_S - now)
            for key, _ in sel.select(max(0.0, min(wait, 0.5))):
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                tails[key.fd].add(chunk)
                if log_fd is None:
                    log_fd = open_log()
                    os.write(log_fd, log_header)
                os.write(log_fd, chunk)
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now >= exited_at + DRAIN_AFTER_EXIT_S:
                break  # the shell is done; leftovers holding the pipes are killed below
            if deadline is not None and now >= deadline and exited_at is None:
                reason = f"timed out after {timeout:g} s"
                _terminate(proc)
                exited_at = time.monotonic()
            if now >= next_tick:
                next_tick = now + tick_every
                if exited_at is None and not tick():
                    reason = "claim lost (job was rescued elsewhere); run abandoned"
                    _terminate(proc)
                    exited_at = time.monotonic()
        code = proc.wait()
    finally:
        kill_group(proc.pid)  # nothing the job started outlives it
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
        if log_fd is not None:
            os.close(log_fd)
    out, err = (t.text() for t in tails.values())
    return RunResult(exit_code=code, error=reason or describe_exit(code, err),
                     stdout_tail=out, stderr_tail=err)


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM the group, give it a moment, then SIGKILL it."""
    kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    kill_group(proc.pid, signal.SIGKILL)


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
