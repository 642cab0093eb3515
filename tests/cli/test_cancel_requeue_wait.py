"""Issue 9 (control) and issue 14 #3, #8, #9: stopping what runs, running finished
jobs again, scripts that wait, and answers that are the truth. Real pools, real
signals, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.helpers import cli_json, run_cli, wait_for
from tests.workers.test_pool_lifecycle import enqueue, procs_running, state_of, wait_state


def test_cancel_a_running_job_stops_its_process_group_within_the_grace(db, pools, tmp_path):
    """SIGTERM first; a job that ignores it is SIGKILLed after --grace, children too."""
    marker = f"ignoreterm-{tmp_path.name}"
    job = enqueue(db, f"trap '' TERM; sleep 300 & sleep 301; echo {marker}", "--max-retries", "3")
    pools(1)
    wait_state(db, job, "processing")
    wait_for(lambda: procs_running("sleep 301"), 10, message="the job to start")
    started = time.monotonic()
    result = run_cli(db, "cancel", job, "--grace", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"results": [{"id": job, "result": "stopping"}]}
    done = wait_state(db, job, "cancelled", timeout=20)
    assert time.monotonic() - started < 2 + 5, "not stopped within grace + a beat or two"
    assert not procs_running("sleep 300") and not procs_running("sleep 301")
    assert done["attempts"] == 1 and "cancelled" in done["last_error"]
    shown = cli_json(db, "show", job)
    assert [a["reason"] for a in shown["attempts_log"]] == ["cancelled"]
    assert cli_json(db, "status")["counts"]["cancelled"] == 1
    # A cancelled job is not in the DLQ: `dlq retry --all` leaves it alone.
    assert cli_json(db, "dlq", "retry", "--all")["retried"] == []
    assert state_of(db, job)["state"] == "cancelled"


def test_cancel_waiting_jobs_and_refuse_finished_ones(db):
    a, b = enqueue(db, "true"), enqueue(db, "true", "--delay", "1h")
    result = run_cli(db, "cancel", a, b)
    assert result.returncode == 0 and f"{a} cancelled" in result.stdout
    assert [j["state"] for j in cli_json(db, "list", "--state", "cancelled")] == \
        ["cancelled", "cancelled"]
    again = run_cli(db, "cancel", a)
    assert again.returncode == 4 and "nothing to cancel" in again.stderr


def test_requeue_runs_a_finished_job_again_with_its_history(db, pools):
    job = enqueue(db, "echo hi; exit 3", "--max-retries", "0")
    pools(1)
    wait_state(db, job, "dead")
    assert run_cli(db, "requeue", job).returncode == 0
    again = wait_state(db, job, "dead", timeout=20)
    assert again["runs"] == 2 and again["attempts"] == 1
    runs = cli_json(db, "show", job)["attempts_log"]
    assert [(r["number"], r["exit_code"], r["reason"]) for r in runs] == \
        [(1, 3, "exit"), (2, 3, "exit")]
    one = run_cli(db, "logs", job, "--attempt", "2")
    assert one.returncode == 0 and one.stdout.count("hi") == 1 and "attempt 2" in one.stdout
    refused = run_cli(db, "requeue", enqueue(db, "true", "--delay", "1h"))
    assert refused.returncode == 4


def test_wait_exit_codes(db, pools):
    ok, bad = enqueue(db, "true"), enqueue(db, "false", "--max-retries", "0")
    never = enqueue(db, "true", "--delay", "1h")
    pools(1)
    assert run_cli(db, "wait", ok).returncode == 0
    both = run_cli(db, "wait", ok, bad, "--json")
    assert both.returncode == 6, both.stderr
    states = {j["id"]: j["state"] for j in json.loads(both.stdout)["finished"]}
    assert states == {ok: "completed", bad: "dead"}
    started = time.monotonic()
    timed = run_cli(db, "wait", never, "--timeout", "1")
    assert timed.returncode == 7 and "timed out" in timed.stderr
    assert time.monotonic() - started < 10
    assert run_cli(db, "wait", "no-such-job").returncode == 3


def test_logs_follow_ends_with_a_cancelled_job(db, pools):
    import subprocess
    import sys
    from tests.helpers import cli_env
    job = enqueue(db, "echo start; sleep 300")
    pools(1)
    wait_state(db, job, "processing")
    follow = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "logs", job, "--follow"],
                              env=cli_env(db), stdout=subprocess.PIPE, text=True)
    run_cli(db, "cancel", job, "--grace", "1")
    out, _ = follow.communicate(timeout=30)
    assert follow.returncode == 6 and "start" in out


def test_second_ctrl_c_puts_the_running_job_back_uncounted(db, pools, tmp_path):
    """Issue 14 #3: the old pool printed "running jobs go back to the queue" on a
    second Ctrl+C but the job went dead (its attempt counted, max-retries 0)."""
    job = enqueue(db, "sleep 300", "--max-retries", "0")
    pool = pools(1)
    pool.wait_ready()
    wait_state(db, job, "processing")
    pool.signal(signal.SIGINT)
    pool.wait_for_line("Ctrl+C again")
    pool.signal(signal.SIGINT)
    assert pool.wait(30) == 0
    back = state_of(db, job)
    assert (back["state"], back["attempts"]) == ("pending", 0), back
    assert not procs_running("sleep 300")
    assert [a["reason"] for a in cli_json(db, "show", job)["attempts_log"]] == ["stopped"]


def test_worker_stop_now_from_another_terminal(db, pools):
    job = enqueue(db, "trap '' TERM; sleep 300", "--max-retries", "0")
    pool = pools(1)
    wait_state(db, job, "processing")
    started = time.monotonic()
    result = run_cli(db, "worker", "stop", "--now", "--grace", "1", "--wait")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15
    assert pool.wait(30) == 0
    assert state_of(db, job)["state"] == "pending" and not procs_running("sleep 300")


@pytest.mark.postgres
def test_cancel_racing_a_slow_claim_tells_the_truth(pg_database, monkeypatch, tmp_path):
    """Issue 14 #9: with the claim's commit held up (LOCK TABLE event), the old
    `cancel` printed "cancelled X" and X then ran to completion."""
    import subprocess
    import sys
    from tests.conftest import _pg_admin, _reset_pg
    from tests.helpers import WorkerPool, cli_env
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _reset_pg(pg_database)
    db = pg_database
    enqueue(db, "sleep 5", "--id", "racer")
    blocker = _pg_admin(pg_database)
    blocker.autocommit = False
    blocker.cursor().execute("LOCK TABLE event IN ACCESS EXCLUSIVE MODE")
    pool = WorkerPool(db, 1)  # its claim takes the job row, then waits to write its event
    canceller = None
    try:
        wait_for(lambda: _waiting_on_locks(pg_database) >= 1, 20,
                 message="the claim to wait on the lock")
        canceller = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "cancel",
                                      "racer", "--json"], env=cli_env(db),
                                     stdout=subprocess.PIPE, text=True)
        wait_for(lambda: _waiting_on_locks(pg_database) >= 2, 20,
                 message="the cancel to queue behind the claim")
        blocker.commit()
        blocker.close()
        out, _ = canceller.communicate(timeout=30)
        assert canceller.returncode == 0
        [answer] = json.loads(out)["results"]
        final = wait_state(db, "racer", "completed", "cancelled", timeout=30)
    finally:
        if not blocker.closed:
            blocker.close()
        pool.close()
    assert answer["result"] == "stopping", "the job was claimed first: it is being stopped"
    assert final["state"] == "cancelled" and final["runs"] == 1, final


def _waiting_on_locks(url: str) -> int:
    from tests.conftest import _pg_admin
    conn = _pg_admin(url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")
        n = cur.fetchone()[0]
    conn.close()
    return n


@pytest.mark.postgres
def test_delete_never_removes_a_job_claimed_meanwhile(pg_database, monkeypatch, tmp_path):
    """Issue 14 #8: six workers on 3,000 jobs and deletes of ids just ahead of the
    claim point: the old delete (by seq only) removed jobs being processed."""
    import subprocess
    import sys
    from tests.conftest import _reset_pg
    from tests.helpers import WorkerPool, cli_env
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _reset_pg(pg_database)
    db = pg_database
    lines = "".join(json.dumps({"command": "true", "id": f"j{i:05d}"}) + "\n"
                    for i in range(3000))
    assert run_cli(db, "enqueue", "--file", "-", input=lines).returncode == 0
    pools = [WorkerPool(db, 3), WorkerPool(db, 3)]
    try:
        deleted, refused = 0, 0
        for round_ in range(12):
            done = {j["id"] for j in cli_json(db, "list", "--state", "completed,processing")}
            ahead = [f"j{i:05d}" for i in range(3000) if f"j{i:05d}" not in done][:25]
            if not ahead:
                break
            result = subprocess.run([sys.executable, "-m", "queuectl_tui", "delete", *ahead],
                                    env=cli_env(db), capture_output=True, text=True)
            assert result.returncode in (0, 3, 4), result.stderr
            deleted += result.returncode == 0
            refused += result.returncode == 4
        wait_for(lambda: not cli_json(db, "list", "--state", "pending,processing,failed"), 120,
                 message="the queue to drain")
    finally:
        for pool in pools:
            pool.close()
    events = [json.loads(line) for line in run_cli(db, "history", "--json").stdout.splitlines()]
    events.sort(key=lambda e: e["seq"])
    running: set[str] = set()
    for event in events:  # a job may be deleted after its run ended, never during it
        if event["to"] == "processing":
            running.add(event["job_id"])
        elif event["from"] == "processing":
            running.discard(event["job_id"])
        elif event["to"] == "deleted":
            assert event["job_id"] not in running, f"{event['job_id']} deleted while running"
    deleted_ids = {e["job_id"] for e in events if e["to"] == "deleted"}
    remaining = {j["id"] for j in cli_json(db, "list")}
    assert remaining | deleted_ids == {f"j{i:05d}" for i in range(3000)}
