"""Issue 28, jobs that talk back, through real `queuectl worker start` pools on
SQLite and PostgreSQL: progress from `queuectl progress` and from a job's own
output lines reaches `show --json` within a second, a result reaches the job
enqueued --after it, a result over the limit is refused, and a report against
a locked database returns at once with a warning instead of failing the job.

Latencies are measured from a stamp the job writes right after it reported
(or printed) to the first in-process read of the job (`job_dict`, what `show
--json` prints) that shows it, and printed (`pytest -s`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from queuectl_tui.engine.reads import job_dict
from queuectl_tui.engine.storage.opening import open_database
from queuectl_tui.engine.storage.location import is_postgres_url
from tests.helpers import cli_json, run_cli, wait_for
from tests.workers.test_pool_lifecycle import enqueue, wait_state

QUEUECTL = f"{sys.executable} -m queuectl_tui"
SECOND = 1.0


class Reader:
    """The job as `show --json` has it, read in this process: a CLI call costs
    a few hundred milliseconds here, too coarse to time a second with."""

    def __init__(self, db: str) -> None:
        self.opened = open_database(db)

    def progress(self, job_id: str) -> dict | None:
        from queuectl_tui.engine.reads import get
        return job_dict(get(job_id))["progress"]

    def close(self) -> None:
        self.opened.close()


@pytest.fixture
def reader(db):
    yield lambda: Reader(db)


def seen_within(read: Reader, job_id: str, go: Path, stamp: Path, check) -> float:
    """Let the job go (it waits for `go`, reports, then writes `stamp`): seconds
    from the time in `stamp` to the first read where `check(progress)` holds."""
    go.touch()
    wait_for(stamp.exists, 30, message=f"{stamp.name} written by the job")
    found = wait_for(lambda: (p := read.progress(job_id)) is not None and check(p)
                     and time.time(), 10, interval=0.01,
                     message=f"progress of {job_id} to show")
    for _ in range(50):
        text = stamp.read_text().strip()
        if text:
            return found - float(text)
        time.sleep(0.01)
    raise AssertionError(f"{stamp} stayed empty")


def stamp_cmd(path: Path) -> str:
    return f"date +%s.%N > {path}.tmp && mv {path}.tmp {path}"


def gate_cmd(path: Path) -> str:
    return f"while [ ! -e {path} ]; do sleep 0.02; done"


def test_progress_from_the_command_shows_within_a_second(db, pools, reader, tmp_path):
    go, done, gate = tmp_path / "go", tmp_path / "reported", tmp_path / "gate"
    job = enqueue(db, f"{gate_cmd(go)} && {QUEUECTL} progress 120/480 --message 'copying "
                      f"files' && {stamp_cmd(done)} && {gate_cmd(gate)} && "
                      f"{QUEUECTL} progress 100")
    pools(2).wait_ready()
    read = reader()
    try:
        took = seen_within(read, job, go, done, lambda p: p["done"] == 120)
    finally:
        read.close()
    print(f"\n[{'pg' if is_postgres_url(db) else 'sqlite'}] queuectl progress -> "
          f"show: {took * 1000:.0f} ms after the command returned")
    assert took < SECOND
    shown = cli_json(db, "show", job)
    assert shown["state"] == "processing"
    progress = shown["progress"]
    assert (progress["done"], progress["total"], progress["percent"],
            progress["message"]) == (120, 480, 25, "copying files")
    assert progress["eta_s"] is not None and progress["eta_s"] >= 0
    listed = run_cli(db, "list")
    assert "PROGRESS" in listed.stdout and "120/480" in listed.stdout, listed.stdout
    assert "25% (120/480)" in run_cli(db, "show", job).stdout
    gate.touch()
    wait_state(db, job, "completed")
    final = cli_json(db, "show", job)["progress"]
    assert (final["percent"], final["message"], final["eta_s"]) == (100, "copying files", None)


def test_progress_from_output_lines_shows_within_a_second(db, pools, reader, tmp_path):
    go, printed, gate = tmp_path / "go", tmp_path / "printed", tmp_path / "gate"
    ok = run_cli(db, "queue", "progress", "fetch", r"(\d+)/(\d+) files")
    assert ok.returncode == 0, ok.stderr
    # `\r` ends a line, as a tool that redraws its status line prints it; the
    # last match wins; the end comes with no newline at all.
    own = enqueue(db, "--progress-regex", r"(\d+)%",
                  f"{gate_cmd(go)} && printf 'start\\n 5%%\\r 20%%\\r 30%% done\\r' && "
                  f"{stamp_cmd(printed)} && "
                  f"{gate_cmd(gate)} && printf ' 80%%'")
    by_queue = enqueue(db, "--queue", "fetch",
                       "echo '3/10 files' >&2; echo 'noise 9/9 lines'; sleep 0.5; "
                       "echo '7/10 files' >&2")
    plain = enqueue(db, "echo 50%")
    pools(3).wait_ready()
    read = reader()
    try:
        wait_state(db, own, "processing")
        took = seen_within(read, own, go, printed, lambda p: p["percent"] == 30)
    finally:
        read.close()
    print(f"\n[{'pg' if is_postgres_url(db) else 'sqlite'}] output line -> show: "
          f"{took * 1000:.0f} ms after it was printed")
    assert took < SECOND
    gate.touch()
    wait_state(db, own, "completed")
    assert cli_json(db, "show", own)["progress"]["percent"] == 80  # flushed before the outcome
    wait_state(db, by_queue, "completed")
    assert cli_json(db, "show", by_queue)["progress"] == {
        **cli_json(db, "show", by_queue)["progress"], "done": 7, "total": 10, "percent": 70}
    wait_state(db, plain, "completed")
    assert cli_json(db, "show", plain)["progress"] is None  # no pattern: not read
    assert [q["progress_regex"] for q in cli_json(db, "queue", "list")
            if q["name"] == "fetch"] == [r"(\d+)/(\d+) files"]


def test_a_result_reaches_the_job_enqueued_after_it(db, pools, tmp_path):
    got, env = tmp_path / "deps.json", tmp_path / "after"
    first = enqueue(db, f"{QUEUECTL} result set '{{\"rows\": 42, \"file\": \"a.csv\"}}'")
    second = enqueue(db, f"echo '[1, 2, 3]' | {QUEUECTL} result set -")
    quiet = enqueue(db, "true")
    dependent = enqueue(db, "--after", f"{first},{second},{quiet}",
                        f"echo \"$QUEUECTL_AFTER\" > {env}; {QUEUECTL} result --deps > {got}")
    pools(2).wait_ready()
    wait_state(db, dependent, "completed")
    assert env.read_text().split() == [first, second, quiet]
    assert json.loads(got.read_text()) == {first: {"rows": 42, "file": "a.csv"},
                                           second: [1, 2, 3], quiet: None}
    printed = run_cli(db, "result", first)
    assert printed.returncode == 0 and json.loads(printed.stdout) == {"rows": 42, "file": "a.csv"}
    none = run_cli(db, "result", quiet)
    assert none.returncode == 8 and "has no result" in none.stderr
    assert cli_json(db, "show", second)["result"] == [1, 2, 3]
    assert cli_json(db, "show", dependent)["result"] is None


def test_a_result_over_the_limit_is_refused_and_says_the_limit(db, pools, tmp_path):
    assert run_cli(db, "config", "set", "result-max-bytes", "1000").returncode == 0
    big = enqueue(db, "--max-retries", "0", f"{sys.executable} -c 'print(\"[\" + \"1,\" * 600 "
                      f"+ \"1]\")' | {QUEUECTL} result set -; echo \"rc=$?\"")
    stale = enqueue(db, f"{QUEUECTL} result set 1 --job {big}; echo \"rc=$?\"")
    pools(1).wait_ready()
    wait_state(db, big, "completed")
    shown = cli_json(db, "show", big)
    assert "rc=2" in shown["stdout_tail"]
    assert "result is 1,204 bytes; the limit is 1,000 (config result-max-bytes" \
        in shown["stderr_tail"]
    assert shown["result"] is None
    wait_state(db, stale, "completed")
    late = cli_json(db, "show", stale)
    assert "rc=4" in late["stdout_tail"] and "not running" in late["stderr_tail"]


def _hold(db: str, job_id: str) -> tuple[subprocess.Popen | None, object]:
    """Another process or connection holding what a report needs: SQLite's
    write lock (a bulk enqueue's slice), or the job's row on PostgreSQL."""
    if is_postgres_url(db):
        import psycopg2
        conn = psycopg2.connect(db)
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM job WHERE id = %s FOR UPDATE", (job_id,))
        return None, conn
    code = ("import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('COMMIT')\n")
    holder = subprocess.Popen([sys.executable, "-c", code, db], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder, None


def test_a_report_against_a_locked_database_returns_at_once_with_a_warning(
        db, pools, tmp_path):
    gate, out = tmp_path / "gate", tmp_path / "out"
    job = enqueue(db, f"{gate_cmd(gate)}; s=$(date +%s.%N); {QUEUECTL} progress 50 2> {out}.err;"
                      f" echo \"$? $s $(date +%s.%N)\" > {out}")
    pools(1).wait_ready()
    wait_state(db, job, "processing")
    holder, conn = _hold(db, job)
    try:
        gate.touch()
        wait_for(out.exists, 30, message="the report to return")
    finally:
        if holder is not None:
            holder.stdin.write("\n")
            holder.stdin.close()
            holder.wait(10)
        if conn is not None:
            conn.rollback()
            conn.close()
    rc, start, end = out.read_text().split()
    print(f"\n[{'pg' if is_postgres_url(db) else 'sqlite'}] a report against a locked "
          f"database returned in {float(end) - float(start):.2f} s (process start included)")
    assert rc == "0"
    assert "warning" in Path(f"{out}.err").read_text()
    assert "was not recorded" in Path(f"{out}.err").read_text()
    assert float(end) - float(start) < 5.0  # the usual wait for a lock is 10 s
    wait_state(db, job, "completed")
    assert cli_json(db, "show", job)["progress"] is None
