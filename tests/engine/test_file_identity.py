"""Opened.file_gone: the path still names the SQLite file this process opened."""

from __future__ import annotations

import json
import os
from pathlib import Path

from queuectl_tui.engine.storage.opening import open_database
from tests.helpers import WorkerPool, jobs_by_id, run_cli, wait_for


def test_a_file_kept_in_place_is_not_gone(tmp_path):
    opened = open_database(str(tmp_path / "q.db"))
    try:
        assert opened.file_gone() is None
    finally:
        opened.close()


def test_a_deleted_file_is_said_deleted(tmp_path):
    path = tmp_path / "q.db"
    opened = open_database(str(path))
    try:
        os.unlink(path)
        assert "was deleted" in opened.file_gone()
    finally:
        opened.close()


def test_a_file_replaced_by_a_new_database_is_said_replaced(tmp_path):
    path = tmp_path / "q.db"
    opened = open_database(str(path))
    try:
        os.unlink(path)
        other = open_database(str(path))
        other.close()
        assert "replaced" in opened.file_gone()
    finally:
        opened.close()


def test_a_pool_whose_file_is_deleted_stops_and_leaves_the_new_database_alone(tmp_path):
    """Issue 25 #11: `rm q.db` under a running pool (its -wal and -shm stay), a
    new q.db by the next enqueue, a second pool: the first pool, still holding
    the deleted file, must stop with one line and a non-zero exit, and claim
    nothing of the new database."""
    path = tmp_path / "q.db"
    first = WorkerPool(path, 2)
    second = None
    try:
        first.wait_ready()
        os.unlink(path)
        assert Path(f"{path}-wal").exists()  # the trap: the old WAL stays beside the new file
        for i in range(5):
            assert run_cli(path, "enqueue", "--id", f"J{i}", "true").returncode == 0
        code = first.wait(20)
        log = first.proc.stderr.read()
        assert code != 0, log
        assert "database file" in log and ("was deleted" in log or "replaced" in log), log
        second = WorkerPool(path, 1)
        wait_for(lambda: all(j["state"] == "completed" for j in jobs_by_id(path).values()),
                 message="the new database's five jobs to complete")
        jobs = jobs_by_id(path)
        assert sorted(jobs) == [f"J{i}" for i in range(5)]
        workers = {w["id"] for w in second.live_workers()}
        for job_id in jobs:
            history = [json.loads(line) for line in run_cli(
                path, "history", "--job", job_id, "--json").stdout.splitlines()]
            claims = [e["worker_id"] for e in history if e["to"] == "processing"]
            assert len(claims) == 1 and claims[0] in workers, (job_id, history)
    finally:
        first.close()
        if second is not None:
            second.close()
