"""The database under stress: locked, truncated, corrupt, read-only, full, old.
Every case gives a one-line message and exit code 5, and changes nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
import sys

import pytest

from queuectl_tui.engine.storage.schema import SCHEMA_VERSION
from tests.helpers import cli_env, cli_json, run_cli

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def assert_db_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 5, (result.returncode, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def fill(db, n: int = 2000) -> None:
    lines = "".join(json.dumps({"command": f"echo {i}", "id": f"j{i}"}) + "\n" for i in range(n))
    assert run_cli(db, "enqueue", "--file", "-", input=lines).returncode == 0


def count_jobs(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM job").fetchone()[0]


@pytest.fixture
def tmpfs(tmp_path):
    """A small real filesystem we can fill up or make read-only (needs root)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_truncated_database_is_detected_and_left_alone(db_path):
    fill(db_path)
    size = db_path.stat().st_size
    with open(db_path, "r+b") as fh:
        fh.truncate(size // 2)
    before = db_path.read_bytes()
    assert_db_error(run_cli(db_path, "status"), "damaged", "truncated")
    assert_db_error(run_cli(db_path, "enqueue", "true"), "truncated")
    assert db_path.read_bytes() == before


def test_corrupt_pages_are_reported_as_damage(db_path):
    fill(db_path)
    data = bytearray(db_path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for p in range(1, len(data) // page):  # scribble over every page but the header page
        data[p * page: p * page + 64] = b"\xff" * 64
    db_path.write_bytes(bytes(data))
    before = db_path.read_bytes()
    assert_db_error(run_cli(db_path, "list"), "damaged")
    assert db_path.read_bytes() == before


def test_locked_database_is_a_clear_message_and_no_half_written_job(db_path):
    fill(db_path, 10)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "queuectl_tui", "enqueue", "echo late", "--id", "late"],
            capture_output=True, text=True, env=cli_env(db_path, QUEUECTL_BUSY_TIMEOUT="0.3"))
        assert_db_error(result, "locked by another process", "try again")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert count_jobs(db_path) == 10
    assert run_cli(db_path, "enqueue", "echo late", "--id", "late").returncode == 0
    assert count_jobs(db_path) == 11


def test_disk_full_during_a_write_changes_nothing(tmpfs):
    db = tmpfs / "q.db"
    fill(db, 100)
    big = "".join(json.dumps({"command": "echo " + "x" * 2000}) + "\n" for _ in range(4000))
    result = run_cli(db, "enqueue", "--file", "-", input=big)  # ~8 MB into a 4 MB disk
    assert_db_error(result, "disk full")
    assert count_jobs(db) == 100
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_read_only_filesystem_is_a_clear_message(tmpfs):
    db = tmpfs / "q.db"
    fill(db, 5)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    assert_db_error(run_cli(db, "enqueue", "true"), "read-only")
    status = run_cli(db, "status")
    assert status.returncode in (0, 5) and "Traceback" not in status.stderr


def test_database_from_an_older_schema_is_migrated(db_path):
    fill(db_path, 3)
    with sqlite3.connect(db_path) as conn:  # what a version-0 database looked like
        conn.execute("DROP TABLE meta")
        conn.execute("DROP INDEX job_claim_q")
    status = cli_json(db_path, "status")
    assert status["counts"]["pending"] == 3
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() \
            == (str(SCHEMA_VERSION),)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "job_claim_q" in names


def test_wal_and_logs_are_owner_only(db_path):
    run_cli(db_path, "enqueue", "echo secret-output", "--id", "s")
    holder = sqlite3.connect(db_path)  # keep the WAL files in existence while we look
    holder.execute("SELECT 1 FROM job").fetchall()
    try:
        from queuectl_tui.engine.queue import Queue
        from queuectl_tui.engine.storage.opening import open_database
        from queuectl_tui.workers.worker import Worker
        opened = open_database(str(db_path))
        Worker(Queue(opened), "w").run(until_idle=True)
        opened.close()
        for path in [db_path, *db_path.parent.glob("queue.db-*"),
                     db_path.parent / "queue.db.logs",
                     *(db_path.parent / "queue.db.logs").iterdir()]:
            mode = os.stat(path).st_mode & 0o777
            assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    finally:
        holder.close()


def test_version_1_database_gains_the_due_index(db_path):
    fill(db_path, 3)
    with sqlite3.connect(db_path) as conn:  # what version 1 looked like
        conn.execute("DROP INDEX job_due_q")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    assert cli_json(db_path, "status")["counts"]["pending"] == 3
    with sqlite3.connect(db_path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert "job_due_q" in names and version == (str(SCHEMA_VERSION),)


def test_a_new_database_is_born_in_wal_mode(db_path):
    run_cli(db_path, "config", "set", "max-retries", "3")
    header = db_path.read_bytes()[:100]
    assert (header[18], header[19]) == (2, 2), "not WAL: openers would have to switch it"
    assert not list(db_path.parent.glob(".queue.db.*")), "a temporary file was left behind"


def test_many_processes_opening_a_fresh_database_at_once(tmp_path):
    for round_ in range(3):
        db = tmp_path / f"fresh{round_}.db"
        procs = [subprocess.Popen([sys.executable, "-m", "queuectl_tui", "enqueue", "true",
                                   "--json"], env=cli_env(db), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert json.loads(out)["state"] == "pending"
        assert cli_json(db, "status")["total"] == 6


def test_version_2_database_keeps_every_job_and_event(db_path):
    """A database made by the release before schema v3 (no cwd/env/cancel/batch
    columns, no attempt or batch tables) opens with nothing lost."""
    fill(db_path, 50)
    assert run_cli(db_path, "cancel", "j3").returncode == 0
    with sqlite3.connect(db_path) as conn:
        before_jobs = conn.execute(
            "SELECT id, command, state, attempts, max_retries, priority, run_at, created_at "
            "FROM job ORDER BY seq").fetchall()
        before_events = conn.execute("SELECT * FROM event ORDER BY seq").fetchall()
        conn.execute("DROP INDEX job_staged")  # v2 had neither the index nor its column
        for column in ("cwd", "env", "cancel_requested_at", "cancel_grace", "batch", "runs"):
            conn.execute(f"ALTER TABLE job DROP COLUMN {column}")
        conn.execute("ALTER TABLE worker DROP COLUMN stop_grace")
        conn.execute("DROP TABLE attempt")
        conn.execute("DROP TABLE batch")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    assert cli_json(db_path, "status")["total"] == 50
    with sqlite3.connect(db_path) as conn:
        after_jobs = conn.execute(
            "SELECT id, command, state, attempts, max_retries, priority, run_at, created_at "
            "FROM job ORDER BY seq").fetchall()
        assert after_jobs == before_jobs
        assert conn.execute("SELECT * FROM event ORDER BY seq").fetchall()[:len(before_events)] \
            == before_events
        columns = {r[1] for r in conn.execute("PRAGMA table_info(job)")}
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert {"cwd", "env", "cancel_requested_at", "cancel_grace", "batch", "runs"} <= columns
    assert {"attempt", "batch"} <= tables and version == (str(SCHEMA_VERSION),)


def test_version_3_database_made_by_the_last_release_keeps_everything(db_path):
    """tests/fixtures/v3-release.db was written by the release before named queues
    (commit 094d36e): jobs in every state, events, attempts, a config value. It
    opens with every job in `default` and nothing lost, and its jobs still run."""
    import shutil
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "v3-release.db", db_path)
    job_columns = ("id, command, state, attempts, max_retries, priority, run_at, created_at, "
                   "updated_at, finished_at, exit_code, last_error, runs, cwd")
    with sqlite3.connect(db_path) as conn:
        before_jobs = conn.execute(f"SELECT {job_columns} FROM job ORDER BY seq").fetchall()
        before_events = conn.execute("SELECT * FROM event ORDER BY seq").fetchall()
        before_attempts = conn.execute("SELECT * FROM attempt ORDER BY seq").fetchall()
        assert conn.execute("SELECT value FROM meta").fetchone() == ("3",)
    assert len(before_jobs) == 6 and len(before_events) == 13 and len(before_attempts) == 3
    status = cli_json(db_path, "status")
    assert status["total"] == 6 and status["counts"]["dead"] == 1
    with sqlite3.connect(db_path) as conn:
        assert conn.execute(f"SELECT {job_columns} FROM job ORDER BY seq").fetchall() \
            == before_jobs
        assert conn.execute("SELECT DISTINCT queue FROM job").fetchall() == [("default",)]
        events = conn.execute("SELECT * FROM event ORDER BY seq").fetchall()
        assert [row[:len(before_events[0])] for row in events] == before_events
        assert all(v is None for row in events for v in row[len(before_events[0]):])
        # the columns the release had, unchanged; later versions' are NULL
        kept = conn.execute("SELECT * FROM attempt ORDER BY seq").fetchall()
        assert [row[:len(before_attempts[0])] for row in kept] == before_attempts
        assert all(v is None for row in kept for v in row[len(before_attempts[0]):])
        assert conn.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"job_claim_q", "job_due_q", "job_finished"} <= indexes
    assert "job_due" not in indexes
    assert cli_json(db_path, "config", "get", "max-retries")["value"] == 4
    queues = cli_json(db_path, "queue", "list")
    assert [q["name"] for q in queues] == ["default"] and queues[0]["total"] == 6
    # the old pending job still runs, from the migrated claim index, in the
    # directory it was enqueued from when the fixture was made
    Path("/tmp/v3fix").mkdir(exist_ok=True)
    assert run_cli(db_path, "worker", "start", "--count", "1", "--detach").returncode == 0
    try:
        assert run_cli(db_path, "wait", "pend-1", "--timeout", "20").returncode == 0
    finally:
        run_cli(db_path, "worker", "stop", "--wait")
