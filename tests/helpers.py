"""Shared test helpers: run the real CLI, start real workers, poll with a deadline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent


def cli_env(db: Path | str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["QUEUECTL_DB"] = str(db)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_cli(db: Path | str, *args: str, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "queuectl_tui", *args], input=input,
                          capture_output=True, text=True, env=cli_env(db), timeout=timeout)


def cli_json(db: Path | str, *args: str) -> Any:
    result = run_cli(db, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05,
             message: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class WorkerPool:
    """A real `queuectl worker start --count N` process, in its own process group."""

    def __init__(self, db: Path | str, count: int = 1, extra: Sequence[str] = (),
                 **env: str) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "queuectl_tui", "worker", "start", "--count", str(count),
             *extra],
            env=cli_env(db, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.count = count
        # The pool logs two lines per job; most tests read its stderr only at the
        # end, or never. A 1 MiB pipe (Linux's default limit for anyone) holds
        # about 5,000 jobs' lines, so a pool never blocks on a pipe nobody reads.
        try:
            import fcntl
            fcntl.fcntl(self.proc.stderr.fileno(), 1031, 1 << 20)  # F_SETPIPE_SZ
        except OSError:
            pass

    def live_workers(self) -> list[dict]:
        listed = run_cli(self.db, "worker", "list", "--json")
        if listed.returncode == 5 and ("no database" in listed.stderr
                                       or "no queue yet" in listed.stderr):
            return []  # the pool has not created the database yet
        assert listed.returncode == 0, listed.stderr
        return [w for w in json.loads(listed.stdout)
                if w["supervisor_pid"] == self.proc.pid and w["state"] in ("idle", "busy")]

    def wait_ready(self, timeout: float = 20.0) -> list[dict]:
        return wait_for(lambda: len(self.live_workers()) >= self.count and self.live_workers(),
                        timeout, message=f"{self.count} workers to register")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_for_line(self, text: str, timeout: float = 20.0) -> None:
        """Read the supervisor's stderr (raw, unbuffered) until `text` appears."""
        import select
        fd = self.proc.stderr.fileno()
        seen = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                chunk = os.read(fd, 4096)
                seen += chunk
                if text.encode() in seen:
                    return
                if not chunk:
                    break
        raise AssertionError(f"the pool never printed {text!r}")

    def kill_group(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        if self.proc.stderr and not self.proc.stderr.closed:  # close() may run twice
            # The pool's log, shown by pytest only when the test failed. Read
            # without blocking: a process that outlived the pool may hold the pipe.
            os.set_blocking(self.proc.stderr.fileno(), False)
            try:
                tail = (self.proc.stderr.read() or "").splitlines()[-60:]
            except (BlockingIOError, ValueError, OSError):
                tail = []
            if tail:
                print(f"--- pool {self.proc.pid} log (last {len(tail)} lines) ---",
                      *tail, sep="\n")
            self.proc.stdout.close()
            self.proc.stderr.close()


def jobs_by_id(db: Path | str) -> dict[str, dict]:
    return {j["id"]: j for j in cli_json(db, "list")}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
