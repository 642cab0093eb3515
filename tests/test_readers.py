"""Issue 9: readers never stall behind a writer; a write that cannot get the lock
fails after the wait it reports. Real CLI processes against a real SQLite file
whose write lock another process holds."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.helpers import cli_env, run_cli
from tests.test_survival_round2 import hold_write_lock


def test_readers_answer_while_another_process_holds_the_write_lock(db_path):
    run_cli(db_path, "enqueue", "echo hi", "--id", "j")
    holder = hold_write_lock(str(db_path), 60)
    try:
        for args in (["status", "--json"], ["list", "--json"], ["show", "j", "--json"],
                     ["history", "--json"], ["dlq", "list"], ["config", "list"]):
            started = time.monotonic()
            result = run_cli(db_path, *args)
            took = time.monotonic() - started
            assert result.returncode == 0, (args, result.stderr)
            assert took < 5, f"{args} waited {took:.1f} s behind the writer"
            assert holder.poll() is None, "the lock was released before the reader answered"
    finally:
        holder.kill()
        holder.wait()


def test_a_write_under_a_held_lock_fails_after_the_wait_it_reports(db_path):
    run_cli(db_path, "enqueue", "true")
    holder = hold_write_lock(str(db_path), 60)
    try:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "queuectl_tui", "enqueue", "true"],
                                env=cli_env(db_path, QUEUECTL_BUSY_TIMEOUT="2"),
                                capture_output=True, text=True, timeout=60)
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 5 and "waited 2 s" in result.stderr, result.stderr
    assert 1.5 < took < 6, f"a 2 s busy timeout took {took:.1f} s"
