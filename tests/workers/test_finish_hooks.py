"""Issue 25, items 6-8: finish hooks that vanished or spoke for the pool.

Real `worker start` pools, real signals, on SQLite and PostgreSQL: a hook
stopped with its pool is handed back and not counted (only a runner's death
counts toward the drop), a hook's output reaches the pool's log escaped and
clipped (JSON lines stay JSON), and hooks keep up with a busy pool, a bounded
number at once, and are drained by a graceful stop.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from queuectl_tui.engine import hooks
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.storage.models import HookRun
from tests.helpers import cli_json, run_cli, wait_for
from tests.engine.test_dependencies_keys_retries_hooks import HookRun_count


def set_config(db, key: str, value: str) -> None:
    done = run_cli(db, "config", "set", key, value)
    assert done.returncode == 0, done.stderr


def enqueue_file(db, tmp_path: Path, count: int, command: str = "true") -> list[str]:
    ids = [f"j{i}" for i in range(count)]
    spec = tmp_path / "jobs.jsonl"
    spec.write_text("".join(json.dumps({"command": command, "id": i}) + "\n" for i in ids))
    done = run_cli(db, "enqueue", "--file", str(spec))
    assert done.returncode == 0, done.stderr
    return ids


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_hooks_done(db, jobs: int, timeout: float = 60) -> None:
    """Every job final and every hook settled (the outbox is empty)."""
    wait_for(lambda: cli_json(db, "status")["counts"]["completed"] == jobs
             and HookRun_count(db) == 0, timeout, interval=0.1,
             message=f"{jobs} jobs done and their hooks settled")


class Drain:
    """Reads a pool's stderr as it comes (a hook printing megabytes must not
    block on a full pipe), keeping the bytes."""

    def __init__(self, pool) -> None:
        self.data = bytearray()
        self.fd = pool.proc.stderr.fileno()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while chunk := os.read(self.fd, 1 << 16):
            self.data += chunk

    def lines(self, timeout: float = 10.0) -> list[bytes]:
        self.thread.join(timeout)
        return bytes(self.data).splitlines()


# ------------------------------------------------------------------ 6: stops are not failures

def test_a_hook_stopped_by_graceful_stops_is_not_dropped(db, pools, tmp_path):
    """A hook longer than the stop grace, its pool stopped three times (SIGTERM
    as a deploy does, Ctrl+C, Ctrl+C twice): each stop hands it back untried,
    so the fourth pool runs it again, to its end (it was dropped at the fourth
    take, and each stop left it leased for a minute)."""
    out, hold = tmp_path / "hook.txt", tmp_path / "hold"
    hold.touch()
    set_config(db, "finish-hook", f'echo "start $QUEUECTL_JOB_ID" >> {out}; '
                                  f'while [ -e {hold} ]; do sleep 0.05; done; '
                                  f'echo "end $QUEUECTL_JOB_ID" >> {out}')
    enqueue_file(db, tmp_path, 1)
    for n, signals in enumerate(([signal.SIGTERM], [signal.SIGINT],
                                 [signal.SIGINT, signal.SIGINT]), start=1):
        pool = pools(1)
        wait_for(lambda: len(lines(out)) == n, 30, message=f"the hook's start number {n}")
        pool.signal(signals[0])
        if len(signals) == 2:  # the second Ctrl+C: stop now, no grace for the hook
            pool.wait_for_line("Ctrl+C again to stop now")
            asked = time.monotonic()
            pool.signal(signals[1])
        assert pool.wait(30) == 0
        if len(signals) == 2:
            assert time.monotonic() - asked < 4  # not the graceful stop's 5 s for hooks
        pool.close()
        assert HookRun_count(db) == 1
    log = pools(1)
    wait_for(lambda: len(lines(out)) == 4, 30, message="the hook to start a fourth time")
    hold.unlink()
    wait_for(lambda: HookRun_count(db) == 0, 30, message="the hook to end and be settled")
    assert lines(out) == ["start j0"] * 4 + ["end j0"]
    log.signal(signal.SIGTERM)
    assert log.wait(30) == 0
    assert "dropped" not in log.proc.stderr.read()


def test_only_a_runners_death_counts_toward_the_drop(queue, tmp_path):
    """The bound on a hook that kills its runner every time: a run taken by a
    runner that then died (its lease ran out) is a try; after MAX_TRIES of those
    it is dropped, with a line saying why. A run handed back by a stopping pool
    is not a try."""
    from queuectl_tui.workers.services.hooks import HookRunner
    from queuectl_tui.workers.pool_log import PoolLog
    out = tmp_path / "ran.txt"
    queue.config_set("finish-hook", f"echo ran >> {out}")
    for job in ("killer", "handed"):
        queue.enqueue(JobSpec(command="true", id=job))
        claimed = queue.claim("w", 30)
        queue.finish(claimed, "w", exit_code=0, error=None)
    killer, handed = (HookRun.get(HookRun.job_id == j).seq for j in ("killer", "handed"))
    for _ in range(hooks.MAX_TRIES):  # taken by runners that died holding it
        queue.clock.advance(120)
        taken = hooks.take(queue.db, "dead:1", queue.clock.now(), 1, 60)
        assert [run.seq for run in taken] == [killer]
    for _ in range(hooks.MAX_TRIES * 2):  # stopped with its pool, over and over
        taken = hooks.take(queue.db, "stopping:2", queue.clock.now(), 1, 60)
        assert [run.seq for run in taken] == [handed]
        hooks.settle(queue.db, "stopping:2", [], [handed])
    assert HookRun.get_by_id(handed).tries == 0
    queue.clock.advance(120)
    log = tmp_path / "pool.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    runner = HookRunner(queue, PoolLog(fd=fd, stamp=False))
    runner.start()
    try:
        wait_for(lambda: HookRun.select().count() == 0, 20, message="both runs settled")
    finally:
        runner.stop()
        os.close(fd)
    assert lines(out) == ["ran"]  # the handed-back one ran; the killer did not
    assert f"hook for job killer (completed) dropped: its runner died {hooks.MAX_TRIES} " \
           "times" in log.read_text()


# ------------------------------------------------------------------ 7: output in the pool's log

FORGED = ("forged\r\n2026-01-01T00:00:00.000Z worker w-1: job j0 attempt 1/4 completed in "
          "0.001 s\n\x1b]0;owned\x07\x1b[2J")
FORGE = "printf '" + FORGED.replace("\r", "\\r").replace("\n", "\\n").replace(
    "\x1b", "\\033").replace("\x07", "\\007") + "'"


def test_hook_output_is_escaped_and_clipped_in_json_lines(db, pools, tmp_path):
    """A hook printing escape sequences, CR LF and 5 MB: every line of the
    pool's `--log-format json` log is JSON, none is long, no escape reaches
    it raw, and the hook's line keeps the end of its output and says how many
    bytes were cut. Nothing goes to the pool's stdout."""
    set_config(db, "finish-hook", f"{FORGE} >&2; head -c 5000000 /dev/zero | tr '\\0' a >&2; "
                                  "echo THE-END >&2; echo to-stdout")
    enqueue_file(db, tmp_path, 1)
    pool = pools(1, extra=("--log-format", "json"))
    drain = Drain(pool)
    wait_hooks_done(db, 1)
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0
    log = drain.lines()
    assert pool.proc.stdout.read() == ""
    records = [json.loads(line) for line in log]  # every line: JSON
    assert max(len(line) for line in log) < 4096
    assert not any(b"\x1b" in line or b"\r" in line for line in log)
    hook_lines = [r for r in records if r["event"] == "pool.hook"]
    assert len(hook_lines) == 1, hook_lines
    line = hook_lines[0]
    assert (line["job"], line["outcome"], line["stdout"]) == ("j0", "ok", "to-stdout\n")
    assert line["stderr"].endswith("aaaTHE-END\n")
    printed = len(FORGED.encode()) + 5_000_000 + len("THE-END\n")
    assert line["stderr_cut_bytes"] == printed - len(line["stderr"].encode())
    assert f"[{line['stderr_cut_bytes']:,} bytes cut]" in line["message"]


def test_hook_output_cannot_forge_text_log_lines(db, pools, tmp_path):
    """The text log: the forged line stays inside the hook's own line, its
    escapes shown as `\\x1b`, its CR LF as `\\x0d` and a space."""
    set_config(db, "finish-hook", f"{FORGE}; exit 3")
    enqueue_file(db, tmp_path, 1)
    pool = pools(1)
    drain = Drain(pool)
    wait_hooks_done(db, 1)
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0
    log = [line.decode() for line in drain.lines()]
    assert not any("\x1b" in line or "\r" in line for line in log)
    hook_lines = [line for line in log if "hook for job j0" in line]
    assert len(hook_lines) == 1, log
    assert hook_lines[0].split(" ", 1)[1].startswith(
        "hook for job j0 (completed) failed: exit code 3; stdout: forged\\x0d "
        "2026-01-01T00:00:00.000Z worker w-1")
    assert "\\x1b]0;owned\\x07\\x1b[2J" in hook_lines[0]
    assert not any(line.startswith(("forged", "2026-01-01")) for line in log)


# ------------------------------------------------------------------ 8: keeping up, bounded

def test_hooks_keep_up_with_a_busy_pool_and_a_graceful_stop_drains_them(db, pools, tmp_path):
    """400 trivial jobs and hooks: the hooks end within a few seconds of the
    last job (at 20 a second they took 20 s), and a SIGTERM as the last job
    ends still runs every hook before the pool exits."""
    out = tmp_path / "hooks.txt"
    set_config(db, "finish-hook", f'echo "$QUEUECTL_JOB_ID" >> {out}')
    ids = enqueue_file(db, tmp_path, 400)
    pool = pools(2)
    wait_for(lambda: cli_json(db, "status")["counts"]["completed"] == 400, 60,
             interval=0.1, message="the 400 jobs to complete")
    stopped = time.monotonic()
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0
    assert time.monotonic() - stopped < 6
    assert sorted(lines(out)) == sorted(ids)
    assert HookRun_count(db) == 0


def test_hooks_at_once_are_bounded_by_the_config(db, pools, tmp_path):
    """`finish-hook-concurrency 2`: never more than two hooks at once, and two
    do run together."""
    running, counts = tmp_path / "running", tmp_path / "counts.txt"
    running.mkdir()
    set_config(db, "finish-hook-concurrency", "2")
    set_config(db, "finish-hook", f'touch {running}/$QUEUECTL_JOB_ID; '
                                  f'ls {running} | wc -l >> {counts}; sleep 0.3; '
                                  f'rm {running}/$QUEUECTL_JOB_ID')
    enqueue_file(db, tmp_path, 8)
    pools(2)
    wait_for(lambda: len(lines(counts)) == 8 and HookRun_count(db) == 0, 60,
             message="eight hooks to run")
    seen = [int(n) for n in lines(counts)]
    assert max(seen) == 2, seen
