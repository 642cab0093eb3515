"""Snooze, extend, pause and resume through real pools on SQLite and
PostgreSQL (issue 28). Jobs call the real `queuectl` from inside; the pause
is asked from another host name than the pool's, as cancel is; a stopped
process is seen in /proc (state T)."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

from tests.helpers import cli_json, run_cli, wait_for

QUEUECTL = f"{shlex.quote(sys.executable)} -m queuectl_tui"


def enqueue(db, *args: str) -> str:
    result = run_cli(db, "enqueue", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


def ok(db, *args: str) -> str:
    result = run_cli(db, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def show(db, job_id: str) -> dict:
    return cli_json(db, "show", job_id)


def ended(db, job_id: str, state: str, timeout: float = 40.0) -> dict:
    wait_for(lambda: show(db, job_id)["state"] in (state, "dead", "cancelled", "completed"),
             timeout, message=f"{job_id} to end {state}")
    job = show(db, job_id)
    assert job["state"] == state, job
    return job


def notes(db, job_id: str) -> list[str]:
    """The notes of a job's events (`history --json` is JSON Lines)."""
    lines = run_cli(db, "history", "--job", job_id, "--json").stdout.splitlines()
    return [json.loads(line)["note"] for line in lines if line.strip()]


def group_states(pgid: int) -> dict[int, str]:
    """Pid -> state letter of every process in this process group (/proc/PID/stat)."""
    found = {}
    for entry in [p.name for p in Path("/proc").iterdir() if p.name.isdigit()]:
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found[int(entry)] = fields[0]
    return found


def test_three_snoozes_run_a_job_four_times_and_one_past_the_limit_fails_it(db, pools,
                                                                            tmp_path):
    ok(db, "config", "set", "max-snoozes", "4")
    count = tmp_path / "count"
    snoozer = enqueue(db, "--id", "snoozer", "--max-retries", "3",
                      f"n=$(($(cat {count} 2>/dev/null || echo 0) + 1)); echo $n > {count}; "
                      f"echo run $n attempt $QUEUECTL_ATTEMPT; "
                      f"if [ $n -le 3 ]; then {QUEUECTL} snooze 0.2s; echo not reached; fi")
    sleeper = enqueue(db, "--id", "sleeper", "--max-retries", "0",
                      f"{QUEUECTL} snooze 0.2s; echo not reached")
    pools(2).wait_ready()
    job = ended(db, snoozer, "completed")
    assert (job["runs"], job["attempts"], job["snoozes"]) == (4, 1, 3), job
    assert [a["reason"] for a in job["attempts_log"]] == ["snoozed"] * 3 + ["exit"]
    assert job["stdout_tail"] == "run 4 attempt 1\n"  # every run's attempt was the first
    log = run_cli(db, "logs", snoozer).stdout
    assert "not reached" not in log and log.count("snoozes: it stops now") == 3
    assert "snoozed for 0.2s (3 of 4)" in notes(db, snoozer)
    dead = ended(db, sleeper, "dead")
    assert dead["last_error"] == "snoozed more than 4 times (max-snoozes 4)", dead
    assert (dead["runs"], dead["attempts"], dead["snoozes"]) == (5, 1, 4)
    assert dead["attempts_log"][-1]["reason"] == "snoozed"
    assert dead["attempts_log"][-1]["error"] == dead["last_error"]


def test_exit_75_snoozes_for_the_configured_delay(db, pools, tmp_path):
    ok(db, "config", "set", "snooze-delay", "1")
    flag = tmp_path / "flag"
    job_id = enqueue(db, f"if [ -e {flag} ]; then echo second; else touch {flag}; exit 75; fi")
    # `snooze` as the job's whole process (its shell exec'd it): it exits 75 itself.
    whole = enqueue(db, f"[ -e {flag}-2 ] && echo second || {{ touch {flag}-2; "
                        f"exec {QUEUECTL} snooze 0.2s; }}")
    pools(1).wait_ready()
    exec_d = ended(db, whole, "completed")
    assert (exec_d["runs"], exec_d["attempts"], exec_d["snoozes"]) == (2, 1, 1)
    assert exec_d["attempts_log"][0]["exit_code"] == 75
    job = ended(db, job_id, "completed")
    assert (job["runs"], job["attempts"], job["snoozes"]) == (2, 1, 1)
    first, second = job["attempts_log"]
    assert (first["reason"], first["exit_code"]) == ("snoozed", 75)
    gap = time_of(second["started_at"]) - time_of(first["ended_at"])
    assert 0.9 <= gap < 5, gap
    assert "snoozed for 1s (1 of 10)" in notes(db, job_id)


def time_of(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_extend_lets_a_job_outlive_its_timeout_and_no_more(db, pools):
    ok(db, "queue", "max-timeout", "capped", "3s")
    assert next(q for q in cli_json(db, "queue", "list")
                if q["name"] == "capped")["max_timeout"] == 3
    outlives = enqueue(db, "--timeout", "2", "--max-retries", "0",
                       f"{QUEUECTL} extend 4s && sleep 3 && echo done")
    too_long = enqueue(db, "--timeout", "2", "--max-retries", "0",
                       f"{QUEUECTL} extend 2s && sleep 8 && echo done")
    capped = enqueue(db, "--queue", "capped", "--timeout", "2", "--max-retries", "0",
                     f"{QUEUECTL} extend 10s; echo refused $?")
    pools(3).wait_ready()
    job = ended(db, outlives, "completed")
    assert job["extended_by"] == 4 and job["stdout_tail"].endswith("done\n")
    assert job["attempts_log"][0]["duration"] > 3  # past its own timeout
    dead = ended(db, too_long, "dead")
    assert dead["last_error"] == "timed out after 4 s (2 s, extended by 2 s)", dead
    assert 3.9 < dead["attempts_log"][0]["duration"] < 7
    refused = ended(db, capped, "completed")
    assert "refused 4" in refused["stdout_tail"], refused
    assert refused["extended_by"] is None
    assert "past queue capped's max-timeout 3s" in refused["stderr_tail"]


def test_a_paused_job_is_stopped_its_timeout_waits_and_it_completes_after_resume(
        db, pools, tmp_path):
    pid_file = tmp_path / "pid"
    job_id = enqueue(db, "--timeout", "6", "--max-retries", "0",
                     f"echo $$ > {pid_file}; echo start; sleep 7 & wait; echo end")
    pools(1, QUEUECTL_HOSTNAME="host-a").wait_ready()  # another host than this CLI's
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 20,
             message="the job to start")
    pgid = int(pid_file.read_text())
    started = time.monotonic()
    said = ok(db, "pause", job_id)
    assert said.startswith(f"pausing {job_id}")
    wait_for(lambda: show(db, job_id)["paused"], 10, message="the job paused")
    stopped = wait_for(lambda: (lambda s: len(s) >= 2 and set(s.values()) == {"T"} and s)(
        group_states(pgid)), 10, message="its processes stopped (state T)")
    assert pgid in stopped
    assert "processing (paused)" in ok(db, "list")
    assert "processing 1 (1 paused)" in ok(db, "status")
    assert 'queuectl_jobs_paused{queue="default"} 1.0' in ok(db, "metrics")

    def still_paused_past_its_timeout() -> bool:
        job = show(db, job_id)
        assert job["state"] == "processing" and job["paused"], job  # the timeout waits
        return time.monotonic() - started > 8
    wait_for(still_paused_past_its_timeout, 30, interval=0.5,
             message="8 s since it started, paused past its 6 s timeout")
    assert set(group_states(pgid).values()) == {"T"}
    assert ok(db, "resume", job_id).startswith(f"resuming {job_id}")
    job = ended(db, job_id, "completed")
    assert job["stdout_tail"] == "start\nend\n" and not job["paused"]
    assert job["paused_for"] > 4, job
    assert job["attempts_log"][0]["duration"] > 8  # longer than its timeout, in wall time
    assert not group_states(pgid)


def test_a_paused_job_cancelled_is_continued_and_ends(db, pools, tmp_path):
    pid_file = tmp_path / "pid"
    job_id = enqueue(db, f"echo $$ > {pid_file}; trap 'echo bye; exit 0' TERM; "
                         "sleep 60 & wait")
    pools(1, QUEUECTL_HOSTNAME="host-a").wait_ready()
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 20,
             message="the job to start")
    pgid = int(pid_file.read_text())
    ok(db, "pause", job_id)
    wait_for(lambda: set(group_states(pgid).values()) == {"T"}, 10,
             message="its processes stopped")
    asked = time.monotonic()
    ok(db, "cancel", job_id)
    job = ended(db, job_id, "cancelled", timeout=9)  # before the 10 s grace's SIGKILL
    assert time.monotonic() - asked < 9
    assert "bye" in job["stdout_tail"]  # it was continued, and ended on its own TERM
    wait_for(lambda: not group_states(pgid), 5, message="nothing of it left")


def test_a_stopping_worker_resumes_its_paused_job_so_it_can_end(db, pools, tmp_path):
    gate = tmp_path / "gate"
    job_id = enqueue(db, f"while [ ! -e {gate} ]; do sleep 0.05; done; echo end")
    pool = pools(1)
    pool.wait_ready()
    wait_for(lambda: show(db, job_id)["state"] == "processing", 20, message="the job to start")
    ok(db, "pause", job_id)
    wait_for(lambda: show(db, job_id)["paused"], 10, message="the job paused")
    gate.touch()  # it cannot see it while stopped
    ok(db, "worker", "stop")
    job = ended(db, job_id, "completed")
    assert job["stdout_tail"] == "end\n"
    assert pool.wait(30) == 0
    assert "resumed: its worker is stopping" in notes(db, job_id)
