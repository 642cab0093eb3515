"""The pool's log (`worker start` on stderr), through real processes.

A pool runs a job that succeeds, one that fails then succeeds on its retry, one
that dies at once, one that kills its own worker (rescued, then dead) and one
that is cancelled while it runs; its stderr must tell each job's story with the
job id, attempt and worker id on every line, in text and in JSON Lines.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import pytest

from queuectl_tui.engine.storage.columns import Claimed
from queuectl_tui.workers.pool_log import PoolLog, under_journal
from tests.helpers import WorkerPool, cli_json, run_cli, wait_for

# Named queues may or may not have landed in the engine: lines carry the queue
# exactly when claimed jobs have one.
HAS_QUEUES = "queue" in {f.name for f in dataclasses.fields(Claimed)}

JOBS = {
    "ok": ["echo fine"],
    "flaky": ["--max-retries", "2", "--", "sh", "-c",
              'test -e "$0" || { touch "$0"; echo first try >&2; exit 3; }', "MARKER"],
    "doomed": ["--max-retries", "0", "echo broken >&2; exit 1"],
    "killer": ["--max-retries", "0", "kill -9 $PPID; sleep 5"],
    "slow": ["sleep 30"],
}
FINAL = {"ok": "completed", "flaky": "completed", "doomed": "dead", "killer": "dead",
         "slow": "cancelled"}


def read_stderr(pool: WorkerPool) -> str:
    """Stop the pool gracefully and return all it wrote on stderr."""
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0
    text = pool.proc.stderr.read()
    pool.close()
    return text


def run_story(db: str, tmp_path: Path, *options: str) -> str:
    """Enqueue the five jobs, run them through a pool of two, return its stderr."""
    assert run_cli(db, "config", "set", "backoff-max", "0.2").returncode == 0
    for job_id, spec in JOBS.items():
        spec = [part.replace("MARKER", str(tmp_path / "flaky-ran")) for part in spec]
        result = run_cli(db, "enqueue", "--id", job_id, *spec)
        assert result.returncode == 0, result.stderr
    pool = WorkerPool(db, 2, extra=options)
    try:
        wait_for(lambda: cli_json(db, "show", "slow")["state"] == "processing", 30,
                 message="slow to start")
        assert run_cli(db, "cancel", "slow").returncode == 0
        wait_for(lambda: all(cli_json(db, "show", j)["state"] == s for j, s in FINAL.items()),
                 30, message="every job to reach its final state")
        return read_stderr(pool)
    finally:
        pool.close()


def job_story(records: list[dict], job_id: str) -> list[tuple]:
    return [(r["event"], r.get("outcome"), r["attempt"]) for r in records
            if r.get("job") == job_id]


def test_json_lines_tell_each_jobs_story(db_path, tmp_path):
    err = run_story(str(db_path), tmp_path, "--log-format", "json")
    records = [json.loads(line) for line in err.splitlines()]  # every line is JSON
    jobs = [r for r in records if r["event"].startswith("job.")]
    for r in jobs:
        assert r["worker"] and r["attempt"] >= 1 and r["ts"].endswith("Z"), r
        assert (r.get("queue") == "default") if HAS_QUEUES else "queue" not in r, r
    assert job_story(records, "ok") == [("job.claimed", None, 1), ("job.finished", "completed", 1)]
    assert job_story(records, "flaky") == [
        ("job.claimed", None, 1), ("job.finished", "failed", 1),
        ("job.claimed", None, 2), ("job.finished", "completed", 2)]
    retry = next(r for r in records if r.get("job") == "flaky" and r.get("outcome") == "failed")
    assert retry["exit_code"] == 3 and "first try" in retry["error"]
    assert 0 <= retry["retry_in_s"] <= 0.2 and retry["duration_s"] >= 0
    assert job_story(records, "doomed") == [("job.claimed", None, 1), ("job.finished", "dead", 1)]
    assert job_story(records, "slow") == [("job.claimed", None, 1),
                                          ("job.finished", "cancelled", 1)]
    # The killer's worker died under it: the supervisor rescued the job (no
    # retries left: dead) and replaced the worker.
    assert job_story(records, "killer") == [("job.claimed", None, 1), ("job.rescued", "dead", 1)]
    killed = next(r for r in records if r.get("job") == "killer")["worker"]
    rescue = next(r for r in records if r["event"] == "job.rescued")
    assert rescue["worker"] == killed and rescue["rescued_by"] == "supervisor"
    by_worker = {(r["event"], r["worker"]) for r in records if r["event"].startswith("worker.")}
    assert ("worker.died", killed) in by_worker and ("worker.replaced", killed) in by_worker
    started = {w for e, w in by_worker if e == "worker.started"}
    assert len(started) == 3  # two, and the replacement
    assert {w for e, w in by_worker if e == "worker.stopped"} == started - {killed}
    assert {w for e, w in by_worker if e == "worker.stopping"} == started - {killed}
    assert [r["event"] for r in records if r["event"].startswith("pool.")] == [
        "pool.started", "pool.capacity", "pool.stopping", "pool.stopped"]


def test_text_lines_grep_by_job_id(db_path, tmp_path):
    err = run_story(str(db_path), tmp_path)
    lines = err.splitlines()
    assert "Traceback" not in err
    flaky = [line for line in lines if "flaky" in line]  # what `journalctl | grep ID` shows
    assert len(flaky) == 4, flaky
    assert "job flaky" in flaky[1] and "attempt 1/3 failed after" in flaky[1]
    assert "exit code 3: first try" in flaky[1] and "retry in 0.2 s" in flaky[1]
    assert "attempt 2/3 completed in" in flaky[3]
    for line in flaky:  # stamped (not the journal), with the worker's id
        assert line[:4].isdigit() and line[23] == "Z" and " worker " in line
    if HAS_QUEUES:
        assert all(" in queue default attempt " in line for line in flaky)
    doomed = [line for line in lines if "doomed" in line]
    assert "attempt 1/1 dead after" in doomed[-1] and "broken" in doomed[-1]
    assert "rescued by supervisor" in [line for line in lines if "killer" in line][-1]
    assert "cancelled after" in [line for line in lines if "job slow" in line][-1]
    assert sum(": started (pid" in line for line in lines) == 3
    assert any("replaced by worker" in line for line in lines)


def test_quiet_keeps_worker_lines_only(db_path):
    db = str(db_path)
    assert run_cli(db, "enqueue", "--id", "q1", "true").returncode == 0
    pool = WorkerPool(db, 1, extra=["--quiet", "--log-format", "json"])
    try:
        wait_for(lambda: cli_json(db, "show", "q1")["state"] == "completed", 20,
                 message="q1 to complete")
        records = [json.loads(line) for line in read_stderr(pool).splitlines()]
    finally:
        pool.close()
    events = [r["event"] for r in records]
    assert not [e for e in events if e.startswith("job.")], events
    assert {"pool.started", "worker.started", "worker.stopping", "worker.stopped",
            "pool.stopped"} <= set(events)


def test_detached_pool_logs_to_its_file_in_the_chosen_format(db_path, tmp_path):
    db = str(db_path)
    log = tmp_path / "pool.log"
    result = run_cli(db, "worker", "start", "--detach", "--log", str(log), "--log-format",
                     "json", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["log"] == str(log)  # stdout: JSON only
    try:
        assert run_cli(db, "enqueue", "--id", "d1", "true").returncode == 0
        wait_for(lambda: '"job": "d1"' in log.read_text() and "job.finished" in log.read_text(),
                 20, message="d1's lines in the pool's log")
    finally:
        assert run_cli(db, "worker", "stop", "--wait").returncode == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["outcome"] for r in records if r.get("job") == "d1" and "outcome" in r] == \
        ["completed"]


def test_bad_log_format_is_a_usage_error(db_path):
    result = run_cli(str(db_path), "worker", "start", "--log-format", "xml")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "invalid choice" in result.stderr


def test_under_the_journal_lines_carry_a_priority_and_no_time(monkeypatch):
    """systemd names stderr's socket in JOURNAL_STREAM: journald stamps the time
    itself and reads a "<N>" prefix as the priority (`journalctl -p warning`)."""
    read, write = os.pipe()
    try:
        st = os.fstat(write)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert under_journal(write)
        log = PoolLog(fd=write)
        job = Claimed(seq=1, id="j1", command="x", attempts=1, max_retries=0, timeout=None,
                      prev_state="pending", claim_token="t")
        log.finished("w1", job, "dead", 0.5, 1, "exit code 1: \x1b[2Jboom")
        log.worker("started", "w1", "started (pid 1)")
        lines = os.read(read, 65536).decode().splitlines()
    finally:
        os.close(read)
        os.close(write)
    assert lines[0].startswith("<4>worker w1: job j1 ") and "\\x1b[2Jboom" in lines[0]
    assert lines[1] == "<6>worker w1: started (pid 1)"
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    assert not under_journal(2)


def test_a_job_rescued_by_lease_is_logged_by_the_rescuing_worker(db_path):
    """A whole pool killed: its job is taken back by a worker of another pool
    when the lease runs out, and that worker's line names both workers."""
    db = str(db_path)
    assert run_cli(db, "config", "set", "lease-seconds", "2").returncode == 0
    assert run_cli(db, "enqueue", "--id", "orphan", "sleep 60").returncode == 0
    lost = WorkerPool(db, 1, extra=["--log-format", "json"])
    try:
        holder = wait_for(lambda: cli_json(db, "show", "orphan")["worker_id"], 30,
                          message="the first pool to take the job")
        lost.kill_group()
    finally:
        lost.close()
    rescuer = WorkerPool(db, 1, extra=["--log-format", "json"])
    try:
        wait_for(lambda: cli_json(db, "show", "orphan")["runs"] == 2, 30,
                 message="the job to be rescued and run again")
        assert run_cli(db, "cancel", "orphan", "--grace", "0s").returncode == 0
        wait_for(lambda: cli_json(db, "show", "orphan")["state"] == "cancelled", 30,
                 message="the rerun to be cancelled")
        records = [json.loads(line) for line in read_stderr(rescuer).splitlines()]
    finally:
        rescuer.close()
    rescue = [r for r in records if r["event"] == "job.rescued"]
    me = next(r["worker"] for r in records if r["event"] == "worker.started")
    assert len(rescue) == 1 and rescue[0]["job"] == "orphan", records
    assert rescue[0]["worker"] == holder and rescue[0]["rescued_by"] == me
    assert rescue[0]["outcome"] == "pending" and "lease expired" in rescue[0]["note"]
    assert rescue[0]["attempt"] == 1
