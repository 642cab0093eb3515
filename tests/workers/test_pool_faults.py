"""Issue 14, round two: defects a hostile run reproduced, each through real processes.

Every test names the defect it covers ("#N"). Each failed on the code before
the fix; the docstring says what the old code did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import WorkerPool, cli_env, cli_json, run_cli, wait_for
from tests.engine.test_database_files import tmpfs  # noqa: F401 - a fixture
from tests.workers.test_pool_lifecycle import enqueue, procs_running, state_of, wait_state

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def history(db, job: str) -> list[dict]:
    return [json.loads(line) for line in
            run_cli(db, "history", "--job", job, "--json").stdout.splitlines()][::-1]


def hold_write_lock(db_file: str, seconds: float) -> subprocess.Popen:
    """Another process holding SQLite's write lock (what a long bulk enqueue does)."""
    code = ("import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            f"time.sleep({seconds})\n"
            "c.execute('COMMIT')\n")
    holder = subprocess.Popen([sys.executable, "-c", code, db_file], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def stderr_of(pool: WorkerPool) -> str:
    """Stop the pool and return everything it printed on stderr."""
    if pool.proc.poll() is None:
        pool.proc.send_signal(signal.SIGTERM)
        pool.proc.wait(30)
    fd = pool.proc.stderr.fileno()
    os.set_blocking(fd, False)  # a straggler holding the pipe must not hang us
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    pool.close()
    return b"".join(chunks).decode(errors="replace")


# ------------------------------------------------------------------ #1 long writers

@pytest.mark.parametrize("other_host", [False, True], ids=["same-host", "other-host"])
def test_a_long_writer_does_not_get_a_live_job_rescued(db_path, tmp_path, other_host):
    """#1: the old rescuer read an expired lease during a long write lock, killed
    the healthy job first and recorded "lease expired" once it got the lock.
    Same host: the rescuer sees the worker alive. Other host: a rescuer that
    waited long for the lock does not judge leases until they could be renewed."""
    db = str(db_path)
    run_cli(db, "config", "set", "lease-seconds", "2")
    runs = tmp_path / "runs"
    job = enqueue(db, f"echo run >> {runs}; sleep 6", "--max-retries", "0")
    holder_pool = WorkerPool(db, 1, QUEUECTL_HOSTNAME="host-a")
    rescuer_pool = WorkerPool(db, 1, QUEUECTL_HOSTNAME="host-b" if other_host else "host-a")
    try:
        wait_state(db, job, "processing")
        rescuer_pool.wait_ready()
        holder = hold_write_lock(db, 5)  # 2.5 leases without a lease renewal
        holder.wait(30)
        done = wait_state(db, job, "completed", "dead", timeout=30)
    finally:
        holder_pool.close()
        rescuer_pool.close()
    assert (done["state"], done["attempts"]) == ("completed", 1), done
    assert runs.read_text() == "run\n"
    assert not [e for e in history(db, job) if "lease" in (e["note"] or "")]


# ------------------------------------------------------------------ #2 closed pipes

def test_a_job_that_closes_its_output_keeps_its_lease(db, pools, tmp_path):
    """#2: the old runner stopped renewing the lease once stdout/stderr closed;
    the job was killed every lease as "lease expired" and ended dead."""
    run_cli(db, "config", "set", "lease-seconds", "2")
    runs = tmp_path / "runs"
    job = enqueue(db, f"echo run >> {runs}; exec >/dev/null 2>&1; sleep 5",
                  "--max-retries", "2")
    pools(2)  # the idle one would rescue a lease that ran out
    done = wait_state(db, job, "completed", "dead", timeout=40)
    assert (done["state"], done["attempts"]) == ("completed", 1), done
    assert runs.read_text() == "run\n"


def test_a_job_that_closes_its_output_still_times_out(db, pools):
    """#2: the old runner ignored the timeout of a job with closed pipes (it ran
    to the end and was recorded completed)."""
    job = enqueue(db, "exec >/dev/null 2>&1; sleep 30", "--timeout", "1",
                  "--max-retries", "0")
    pools(1)
    started = time.monotonic()
    done = wait_state(db, job, "dead", "completed", timeout=20)
    assert done["state"] == "dead" and "timed out after 1 s" in done["last_error"], done
    assert time.monotonic() - started < 15
    assert not procs_running("sleep 30")


# ------------------------------------------------------------------ #4 disk full

def test_a_run_finished_during_a_full_disk_is_recorded_as_a_run(tmpfs, tmp_path):  # noqa: F811
    """#4: the old worker gave up recording after ~16 s of a full disk and then
    "handed back" the job it had already run as unstarted: it ran again."""
    db = str(tmpfs / "q.db")
    runs, go = tmp_path / "runs", tmp_path / "go"
    job = enqueue(db, f"echo started; while [ ! -e {go} ]; do sleep 0.05; done; "
                      f"echo run >> {runs}", "--max-retries", "3")
    pool = WorkerPool(db, 1)
    try:
        wait_state(db, job, "processing")
        filler = tmpfs / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        for size in (65536, 512, 1):  # fill the disk to the last byte
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
        os.close(fd)
        go.touch()
        wait_for(runs.exists, 10, message="the job to finish its run")
        full_until = time.monotonic() + 18  # longer than the old code's ~16 s of retries
        wait_for(lambda: time.monotonic() > full_until or pool.proc.poll() is not None, 30,
                 message="the disk-full period")
        assert pool.proc.poll() is None, "the pool died while the disk was full"
        filler.unlink()
        done = wait_state(db, job, "completed", "dead", "pending", "failed", timeout=30)
    finally:
        pool.close()
    assert (done["state"], done["attempts"]) == ("completed", 1), done
    assert runs.read_text() == "run\n"
    assert not [e for e in history(db, job) if "unstarted" in (e["note"] or "")]


# ------------------------------------------------------------------ #5 transient errors

def test_the_pool_rides_out_a_locked_database_and_a_dead_worker(db_path):
    """#5: the old supervisor died ("database is locked") when it had to rescue a
    killed worker's job while another process held the write lock."""
    db = str(db_path)
    pool = WorkerPool(db, 2, QUEUECTL_BUSY_TIMEOUT="1")
    try:
        victim = pool.wait_ready()[0]
        holder = hold_write_lock(db, 4)
        os.kill(victim["pid"], signal.SIGKILL)
        holder.wait(30)
        assert pool.proc.poll() is None, "the supervisor exited"
        wait_for(lambda: len(pool.live_workers()) == 2 and pool.live_workers(), 30,
                 message="the killed worker to be replaced")
        job = enqueue(db, "echo after")
        assert wait_state(db, job, "completed")["stdout_tail"] == "after\n"
    finally:
        err = stderr_of(pool)
    assert "database trouble" in err and "Traceback" not in err, err


def pickup_seconds(job: dict) -> float:
    """From enqueue to claim, on the database's own timestamps."""
    from queuectl_tui.clock import parse_iso
    return parse_iso(job["started_at"]) - parse_iso(job["created_at"])


@pytest.mark.postgres
def test_postgres_connections_terminated_under_a_pool(pg_database, monkeypatch, tmp_path):
    """#5 and #7: terminated server connections crashed idle workers with a
    traceback from conn.poll(); a busy worker that reconnected lost its LISTEN,
    so its pickups waited for the next heartbeat (hundreds of ms, not a few)."""
    from tests.conftest import _pg_admin, _reset_pg
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _reset_pg(pg_database)
    db = pg_database
    busy_pool = WorkerPool(db, 1)
    idle_pool = None
    try:
        busy_pool.wait_ready()
        busy = enqueue(db, "sleep 2; echo busy")
        wait_state(db, busy, "processing")
        idle_pool = WorkerPool(db, 1)
        [idle_worker] = idle_pool.wait_ready()
        admin = _pg_admin(pg_database)
        with admin.cursor() as cur:  # every queue connection: one mid-job, one idle
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        admin.close()
        assert wait_state(db, busy, "completed", timeout=30)["stdout_tail"] == "busy\n"
        assert [w["pid"] for w in idle_pool.live_workers()] == [idle_worker["pid"]], \
            "the idle worker crashed"
        idle_err = stderr_of(idle_pool)
        pickups = []
        for _ in range(7):  # only the reconnected worker is left
            job = enqueue(db, "true")
            pickups.append(pickup_seconds(wait_state(db, job, "completed", timeout=15)))
        assert sorted(pickups)[3] < 0.15, f"pickups waited for the heartbeat: {pickups}"
    finally:
        busy_err = stderr_of(busy_pool)
        if idle_pool is not None and idle_pool.proc.returncode is None:
            idle_pool.close()
    assert "Traceback" not in idle_err + busy_err, idle_err + busy_err


def test_an_enqueue_into_a_deleted_wal_is_not_reported_saved(db_path):
    """#5: with the -wal file deleted under live connections, the old enqueue
    printed success for jobs that were then gone."""
    from queuectl_tui.engine.jobspec import JobSpec
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    from queuectl_tui.errors import DatabaseError
    opened = open_database(str(db_path))
    try:
        queue = Queue(opened)
        queue.enqueue(JobSpec("true"))
        os.unlink(f"{db_path}-wal")
        with pytest.raises(DatabaseError, match="write-ahead log"):
            queue.enqueue(JobSpec("true"))
    finally:
        opened.close()


# ------------------------------------------------------------------ #6 unwritable logs

def test_an_unwritable_logs_folder_fails_no_worker(db_path):
    """#6: the old worker died with a PermissionError traceback on every job
    (a restart storm) and the job stayed pending with no word of why."""
    db = str(db_path)
    Path(f"{db}.logs").write_text("not a folder")  # opening a log in it fails, even for root
    job = enqueue(db, "echo hello")
    pool = WorkerPool(db, 1)
    try:
        pid = pool.wait_ready()[0]["pid"]
        done = wait_state(db, job, "completed", "failed", "dead")
        assert [w["pid"] for w in pool.live_workers()] == [pid], "the worker was restarted"
    finally:
        err = stderr_of(pool)
    assert done["state"] == "completed" and done["stdout_tail"] == "hello\n"
    assert "output not saved to the log" in done["stderr_tail"], done
    assert "Traceback" not in err and "died" not in err, err


# ------------------------------------------------------------------ #14 live config

def test_durability_changes_reach_a_running_worker(db_path):
    """#14: the old worker set its durability once at start; `config set
    durability full` reached only workers started after it."""
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    from queuectl_tui.workers.worker import Worker
    opened = open_database(str(db_path))
    try:
        worker = Worker(Queue(opened, worker=True), "w")
        synchronous = lambda: opened.db.execute_sql("PRAGMA synchronous").fetchone()[0]  # noqa: E731
        assert synchronous() == 1  # NORMAL, the default for workers
        assert run_cli(db_path, "config", "set", "durability", "full").returncode == 0
        worker._reload()  # what every heartbeat does
        assert synchronous() == 2  # FULL
        opened.db.close()
        opened.db.connect()
        assert synchronous() == 2, "a reconnect fell back to the old setting"
    finally:
        opened.close()


# ------------------------------------------------------------------ #15 secrets in ps

@pytest.mark.postgres
def test_no_process_carries_the_database_password_in_its_arguments(pg_database, monkeypatch,
                                                                   tmp_path):
    """#15: the old supervisor passed `--db URL` to every worker: the password was
    in `ps` for every local user to read."""
    from urllib.parse import urlparse
    from tests.conftest import _reset_pg
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _reset_pg(pg_database)
    parsed = urlparse(pg_database)  # trust auth: any password is accepted
    secret = "s3cret-pw-xyzzy"
    url = parsed._replace(netloc=f"{parsed.username or 'postgres'}:{secret}@"
                                 f"{parsed.hostname}:{parsed.port or 5432}").geturl()
    pool = WorkerPool(url, 2)
    try:
        workers = pool.wait_ready()
        pids = [pool.proc.pid] + [w["pid"] for w in workers]
        for pid in pids:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                assert secret.encode() not in fh.read(), f"pid {pid} shows the password"
        assert not procs_running(secret)
    finally:
        pool.close()


# ------------------------------------------------------------------ issue 9: pools

def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def test_a_stop_during_start_up_stops_every_worker(db_path):
    """Issue 9: `worker start --count 40` stopped 0.35 s after start kept its 40
    workers running (the signal reached only the children already listed)."""
    db = str(db_path)
    run_cli(db, "status")
    proc = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "worker", "start",
                             "--count", "24"], env=cli_env(db), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: children_of(proc.pid), 20, interval=0.005,
                 message="the first worker to be spawned")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not procs_running(f"--supervisor-pid {proc.pid}"), "workers outlived the stop"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()


@pytest.mark.parametrize("count", ["65", "99999999999999999999", "0", "many"])
def test_worker_count_is_bounded(db_path, count):
    """Issue 9: `--count 99999999999999999999` forked until the machine stalled."""
    result = run_cli(db_path, "worker", "start", "--count", count)
    assert result.returncode == 2 and result.stdout == "", result
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "64" in result.stderr or "at least 1" in result.stderr or "whole" in result.stderr


def test_worker_start_detach_returns_once_ready_and_worker_stop_ends_it(db_path, tmp_path):
    """Issue 9: `worker start --detach` runs the pool in the background."""
    db = str(db_path)
    log = tmp_path / "pool.log"
    result = run_cli(db, "worker", "start", "--detach", "--count", "2", "--log", str(log),
                     "--json")
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)
    supervisor = started["supervisor_pid"]
    try:
        live = {w["pid"] for w in cli_json(db, "worker", "list")}
        assert set(started["worker_pids"]) == live and len(live) == 2
        job = enqueue(db, "echo detached")
        assert wait_state(db, job, "completed")["stdout_tail"] == "detached\n"
        assert run_cli(db, "worker", "stop", "--wait").returncode == 0
        wait_for(lambda: not procs_running(f"--supervisor-pid {supervisor}"), 20,
                 message="the detached workers to exit")
        assert "started 2 worker(s)" in log.read_text()
    finally:
        try:
            os.killpg(supervisor, signal.SIGKILL)
        except ProcessLookupError:
            pass
