"""Issue 9: readers never stall behind a writer; a write that cannot get the lock
fails after the wait it reports. Real CLI processes against a real SQLite file
whose write lock another process holds."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.helpers import cli_env, run_cli
from tests.workers.test_pool_faults import hold_write_lock


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


# ------------------------------------------------------------------ big bulk enqueues

def bulk_file(tmp_path, n: int, command: str = "true"):
    import json
    path = tmp_path / f"bulk{n}.jsonl"
    line = json.dumps({"command": command}) + "\n"
    path.write_text(line * n)
    return path


def counts_by_state(db_path) -> dict[str, int]:
    """Jobs per state; `staged` counts a bulk enqueue's rows not yet published
    (in staged_job, or in job for a file that names its ids)."""
    import sqlite3
    with sqlite3.connect(db_path) as conn:
        counts = dict(conn.execute("SELECT state, COUNT(*) FROM job GROUP BY state").fetchall())
        staged = conn.execute("SELECT COUNT(*) FROM staged_job").fetchone()[0]
    if staged:
        counts["staged"] = counts.get("staged", 0) + staged
    return counts


def test_workers_and_readers_keep_going_during_a_big_bulk_enqueue(db_path, tmp_path):
    from tests.helpers import WorkerPool, wait_for
    path = bulk_file(tmp_path, 300_000, "true")
    lines = "".join('{"command": "sleep 0.01"}\n' for _ in range(3000))
    assert run_cli(db_path, "enqueue", "--file", "-", input=lines).returncode == 0
    pool = WorkerPool(db_path, 2)
    try:
        pool.wait_ready()
        bulk = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "enqueue", "--file",
                                 str(path)], env=cli_env(db_path), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        wait_for(lambda: counts_by_state(db_path).get("staged", 0) > 0 or bulk.poll() is not None,
                 60, interval=0.01, message="the bulk enqueue to start staging")
        seen, slow_reads = [], []
        while bulk.poll() is None:
            started = time.monotonic()
            status = run_cli(db_path, "status", "--json")
            slow_reads.append(time.monotonic() - started)
            assert status.returncode == 0, status.stderr
            seen.append(counts_by_state(db_path).get("completed", 0))
        assert bulk.returncode == 0, bulk.stderr.read()
    finally:
        pool.close()
    assert len(set(seen)) >= 2, f"no job finished while the bulk enqueue ran: {seen}"
    assert max(slow_reads) < 5, f"status waited behind the bulk enqueue: {slow_reads}"
    assert counts_by_state(db_path).get("staged", 0) == 0


def test_a_bulk_enqueue_killed_before_its_seal_leaves_nothing(db_path, tmp_path):
    from tests.helpers import WorkerPool, wait_for
    import signal
    path = bulk_file(tmp_path, 400_000)
    run_cli(db_path, "enqueue", "true", "--id", "before")
    bulk = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "enqueue", "--file",
                             str(path)], env=cli_env(db_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: counts_by_state(db_path).get("staged", 0) > 0 or bulk.poll() is not None,
             60, interval=0.005, message="staged rows")
    bulk.send_signal(signal.SIGKILL)
    bulk.wait()
    import sqlite3
    with sqlite3.connect(db_path) as conn:
        sealed = conn.execute("SELECT sealed_at FROM batch").fetchall()
    assert sealed == [(None,)], "the kill was meant to land before the seal"
    assert [j["id"] for j in json.loads(run_cli(db_path, "list", "--json").stdout)] == ["before"]
    pool = WorkerPool(db_path, 1)  # its housekeeping removes what the dead enqueue left
    try:
        wait_for(lambda: counts_by_state(db_path).get("staged", 0) == 0, 30,
                 message="the staged rows to be removed")
    finally:
        pool.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM batch").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM job").fetchone() == (1,)


def test_a_sealed_batch_is_published_even_if_its_writer_dies(db_path, monkeypatch):
    """After the seal the enqueue is durable: a crash while publishing (simulated
    by a publish that fails) leaves a batch that recovery publishes whole."""
    from queuectl_tui.engine import batches
    from queuectl_tui.engine.jobspec import JobSpec
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    monkeypatch.setattr(batches, "SLICE_ROWS", 100)
    real_publish = batches.publish

    def crash(queue, batch, **kwargs):
        real_publish(queue, batch, max_slices=1)  # one slice out, then "the process dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(batches, "publish", crash)
    opened = open_database(str(db_path))
    try:
        queue = Queue(opened)
        with pytest.raises(KeyboardInterrupt):
            queue.enqueue_many([JobSpec(command="true", id=f"j{i}") for i in range(1000)])
        assert queue.counts()["pending"] == 100  # one slice published before the "crash"
        monkeypatch.setattr(batches, "publish", real_publish)
        for _ in range(20):
            queue.recover_batches()
        assert queue.counts()["pending"] == 1000
        assert {j.id for j in queue.jobs()} == {f"j{i}" for i in range(1000)}
    finally:
        opened.close()
