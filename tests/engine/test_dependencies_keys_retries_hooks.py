"""Issue 11 (all but schedules): dependencies, unique jobs, retry rules, finish
hooks. Engine rules with an injected clock; real pools, real kills and real
concurrent enqueues on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time

import pytest

from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.storage.models import HookRun, UniqueLock
from queuectl_tui.errors import Conflict, NotFound, UsageError
from tests.helpers import cli_env, cli_json, run_cli, wait_for
from tests.workers.test_pool_lifecycle import enqueue, state_of, wait_state


def run_one(queue, worker="w", *, exit_code=0, ended="exit"):
    claimed = queue.claim(worker, 30)
    assert claimed is not None
    error = None if exit_code == 0 and ended == "exit" else f"exit code {exit_code}"
    queue.finish(claimed, worker, exit_code=exit_code, error=error, ended=ended)
    return claimed.id


def state(queue, job_id):
    return queue.get(job_id).state


# ------------------------------------------------------------------ dependencies

def test_a_chain_is_released_in_order_in_the_outcomes_transaction(queue):
    queue.enqueue(JobSpec(command="true", id="a"))
    queue.enqueue(JobSpec(command="true", id="b", after=("a",)))
    queue.enqueue(JobSpec(command="true", id="c", after=("a", "b")))
    assert [state(queue, j) for j in "abc"] == ["pending", "blocked", "blocked"]
    assert queue.counts()["blocked"] == 2
    assert run_one(queue) == "a"
    assert [state(queue, j) for j in "bc"] == ["pending", "blocked"]
    assert run_one(queue) == "b"
    assert run_one(queue) == "c"
    assert queue.claim("w", 30) is None
    history = [(e["from"], e["to"], e["note"]) for e in queue.history("c")]
    assert ("blocked", "pending", "released: b completed") in history


def test_a_failed_dependency_cancels_its_dependents_transitively(queue):
    queue.enqueue(JobSpec(command="false", id="root", max_retries=0))
    queue.enqueue(JobSpec(command="true", id="mid", after=("root",)))
    queue.enqueue(JobSpec(command="true", id="leaf", after=("mid",)))
    queue.enqueue(JobSpec(command="true", id="other"))
    run_one(queue, exit_code=1)
    assert state(queue, "root") == "dead"
    mid, leaf = queue.get("mid"), queue.get("leaf")
    assert (mid.state, mid.last_error) == ("cancelled", "dependency root ended dead")
    assert (leaf.state, leaf.last_error) == ("cancelled", "dependency mid ended cancelled")
    assert run_one(queue) == "other" and queue.claim("w", 30) is None


def test_a_long_cancelled_chain_is_a_loop_not_a_recursion(queue):
    queue.enqueue(JobSpec(command="true", id="j0"))
    queue.enqueue_many([JobSpec(command="true", id=f"j{i}", after=(f"j{i - 1}",))
                        for i in range(1, 1500)])
    queue.cancel(["j0"])
    assert queue.counts()["cancelled"] == 1500


def test_unknown_ids_cycles_and_dead_dependencies_are_refused(queue):
    with pytest.raises(NotFound, match="'ghost'"):
        queue.enqueue(JobSpec(command="true", after=("ghost",)))
    with pytest.raises(UsageError, match="cycle"):
        queue.enqueue_many([JobSpec(command="true", id="x", after=("y",)),
                            JobSpec(command="true", id="y", after=("x",))])
    with pytest.raises(UsageError, match="cycle"):
        queue.enqueue_many([JobSpec(command="true", id="s", after=("s",))])
    queue.enqueue(JobSpec(command="true", id="gone"))
    queue.cancel(["gone"])
    with pytest.raises(Conflict, match="ended cancelled"):
        queue.enqueue(JobSpec(command="true", after=("gone",)))
    assert queue.counts()["pending"] == 0 and queue.counts()["blocked"] == 0


def test_a_bulk_file_may_name_its_own_jobs(db, tmp_path):
    lines = [{"id": "extract", "command": "true"},
             {"id": "load", "command": "true", "after": ["transform"]},
             {"id": "transform", "command": "true", "after": "extract"}]
    path = tmp_path / "etl.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert run_cli(db, "enqueue", "--file", str(path)).returncode == 0
    states = {j["id"]: j["state"] for j in cli_json(db, "list")}
    assert states == {"extract": "pending", "load": "blocked", "transform": "blocked"}
    shown = cli_json(db, "show", "load")
    assert shown["after"] == [{"id": "transform", "state": "blocked"}]


def test_deleting_a_dependency_cancels_what_waits_for_it(queue):
    queue.enqueue(JobSpec(command="true", id="a", run_at=2e9))
    queue.enqueue(JobSpec(command="true", id="b", after=("a",)))
    queue.delete(["a"])
    assert queue.get("b").last_error == "dependency a was deleted"


def test_dependents_run_in_order_while_workers_are_killed(db, pools, tmp_path):
    """A chain of 12 jobs through a pool whose workers are SIGKILLed again and
    again: every job runs, and no job starts before its dependency completed."""
    out = tmp_path / "order"
    out.touch()
    enqueue(db, f"echo 0 >> {out}; sleep 1", "--id", "c0", "--max-retries", "10")
    for i in range(1, 12):
        enqueue(db, f"echo {i} >> {out}; sleep 1", "--id", f"c{i}", "--after", f"c{i - 1}",
                "--max-retries", "10")
    pool = pools(2)
    pool.wait_ready()
    deadline = time.monotonic() + 180
    kills = 0
    while state_of(db, "c11")["state"] != "completed" and time.monotonic() < deadline:
        busy = [w for w in cli_json(db, "worker", "list") if w["state"] == "busy"]
        if busy and kills < 6:
            os.kill(busy[0]["pid"], signal.SIGKILL)
            kills += 1
        time.sleep(1.5)  # pacing the kills, not waiting for anything
    assert state_of(db, "c11")["state"] == "completed", "the chain did not finish"
    assert kills >= 3
    seen = [int(x) for x in out.read_text().split()]
    firsts = [seen.index(i) for i in range(12)]
    assert firsts == sorted(firsts), f"out of order: {seen}"
    for i in range(1, 12):  # a run of i never starts before i-1's last run ended
        assert min(k for k, v in enumerate(seen) if v == i) > \
            max(k for k, v in enumerate(seen) if v == i - 1)


# ------------------------------------------------------------------ unique jobs

def test_one_job_from_twenty_concurrent_enqueues_with_one_key(db, tmp_path):
    procs = [subprocess.Popen(
        [sys.executable, "-m", "queuectl_tui", "enqueue", "--unique-key", "nightly-backup",
         "--if-absent", "--json", "true"], env=cli_env(db), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for _ in range(20)]
    answers = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        answers.append(json.loads(out))
    jobs = cli_json(db, "list")
    assert len(jobs) == 1
    assert {a["id"] for a in answers} == {jobs[0]["id"]}
    assert sum(1 for a in answers if not a.get("existing")) == 1
    refused = run_cli(db, "enqueue", "--unique-key", "nightly-backup", "true")
    assert refused.returncode == 4 and jobs[0]["id"] in refused.stderr


def test_a_key_is_free_when_the_job_finished_or_after_its_window(queue, clock):
    first = queue.enqueue(JobSpec(command="true", unique_key="k"))["id"]
    with pytest.raises(Conflict, match=first):
        queue.enqueue(JobSpec(command="true", unique_key="k"))
    run_one(queue)
    second = queue.enqueue(JobSpec(command="true", unique_key="k", unique_for=3600))["id"]
    run_one(queue)
    clock.advance(1800)
    with pytest.raises(Conflict, match=second):
        queue.enqueue(JobSpec(command="true", unique_key="k"))
    clock.advance(1801)
    queue.enqueue(JobSpec(command="true", unique_key="k"))
    assert queue.lapse_unique_keys() == 0 and UniqueLock.select().count() == 1


def test_a_requeued_job_holds_its_key_again(queue):
    job = queue.enqueue(JobSpec(command="true", unique_key="k2"))["id"]
    run_one(queue)
    queue.requeue([job])
    with pytest.raises(Conflict, match=job):
        queue.enqueue(JobSpec(command="true", unique_key="k2"))


# ------------------------------------------------------------------ retry rules

def test_exit_codes_and_timeouts_that_are_not_retried(queue):
    queue.config_set("no-retry-on", "126,127")
    queue.enqueue(JobSpec(command="x", id="missing"))
    queue.enqueue(JobSpec(command="x", id="other-code"))
    queue.enqueue(JobSpec(command="x", id="slow", no_retry_on="timeout"))
    queue.enqueue(JobSpec(command="x", id="stubborn", no_retry_on=""))
    run_one(queue, exit_code=127)
    run_one(queue, exit_code=3)
    run_one(queue, exit_code=-15, ended="timeout")
    run_one(queue, exit_code=127)
    assert state(queue, "missing") == "dead"
    assert "exit code 127 is in no_retry_on" in queue.get("missing").last_error
    assert state(queue, "other-code") == "failed"
    assert state(queue, "slow") == "dead" and "timeout" in queue.get("slow").last_error
    assert state(queue, "stubborn") == "failed"  # its own empty rule beats the config's


def test_no_retry_on_through_the_cli(db, pools):
    job = enqueue(db, "no-such-command-xyz", "--no-retry-on", "127")
    bad = run_cli(db, "enqueue", "--no-retry-on", "300", "true")
    assert bad.returncode == 2 and "exit code" in bad.stderr
    pools(1)
    done = wait_state(db, job, "dead")
    assert done["attempts"] == 1 and done["no_retry_on"] == "127"


# ------------------------------------------------------------------ finish hooks

HOOK = 'echo "$QUEUECTL_JOB_ID $QUEUECTL_JOB_STATE $QUEUECTL_EXIT_CODE $QUEUECTL_QUEUE ' \
       '$QUEUECTL_ATTEMPT" >> {out}'


def test_hooks_run_after_each_final_state_with_the_jobs_facts(db, pools, tmp_path):
    out = tmp_path / "hooks.txt"
    assert run_cli(db, "config", "set", "finish-hook", HOOK.format(out=out)).returncode == 0
    ok = enqueue(db, "true", "--queue", "mail")
    dead = enqueue(db, "exit 4", "--max-retries", "0")
    waiting = enqueue(db, "true", "--delay", "1h")
    assert run_cli(db, "cancel", waiting).returncode == 0
    pools(1)
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 3, 30,
             message="three hook runs")
    lines = set(out.read_text().splitlines())
    assert lines == {f"{ok} completed 0 mail 1", f"{dead} dead 4 default 1",
                     f"{waiting} cancelled  default 0"}


def test_a_hook_that_fails_or_hangs_changes_no_job(db, pools, tmp_path):
    # A sleep of its own: `sleep 300` alone would find any on the machine.
    hang = f"sleep 300.{secrets.randbelow(10 ** 9):09d}"
    assert run_cli(db, "config", "set", "finish-hook", "exit 9").returncode == 0
    assert run_cli(db, "queue", "hook", "slow", hang).returncode == 0
    assert run_cli(db, "config", "set", "finish-hook-timeout", "2").returncode == 0
    a = enqueue(db, "true")
    b = enqueue(db, "true", "--queue", "slow")
    pool = pools(1)
    before = {j: wait_state(db, j, "completed") for j in (a, b)}
    wait_for(lambda: hang_running(hang), 20, message="the hanging hook to run")  # seen
    pool.wait_for_line("timed out; killed", 30)
    wait_for(lambda: HookRun_count(db) == 0, 20, message="the hook rows to be done")
    for job, seen in before.items():
        now = state_of(db, job)
        assert (now["state"], now["runs"], now["updated_at"]) == \
            (seen["state"], seen["runs"], seen["updated_at"])
    assert not hang_running(hang)


def hang_running(command: str) -> bool:
    """Is a process running `command` (a whole word of its command line)?"""
    pattern = "(^|[ /])" + re.escape(command) + "($| )"
    return subprocess.run(["pgrep", "-f", pattern], stdout=subprocess.DEVNULL).returncode == 0


def HookRun_count(db) -> int:
    from queuectl_tui.engine.storage.opening import open_database
    opened = open_database(db)
    try:
        return HookRun.select().count()
    finally:
        opened.close()


def test_a_hook_queued_before_a_crash_runs_later_and_the_job_does_not(queue, tmp_path):
    """The outcome's commit writes the hook run; no pool was there to run it (as
    after a crash right after the commit). The next pool runs it, once; the job
    itself stays completed with one run."""
    out = tmp_path / "late.txt"
    queue.config_set("finish-hook", HOOK.format(out=out))
    queue.enqueue(JobSpec(command="true", id="early"))
    run_one(queue)
    assert HookRun.select().count() == 1 and not out.exists()
    from queuectl_tui.workers.services.hooks import HookRunner
    from queuectl_tui.workers.pool_log import PoolLog
    runner = HookRunner(queue, PoolLog(fd=os.open(os.devnull, os.O_WRONLY)))
    runner.start()
    try:
        wait_for(lambda: out.exists(), 10, message="the hook to run")
        wait_for(lambda: HookRun.select().count() == 0, 10,
                 message="the hook run to be recorded done")
    finally:
        runner.stop()
    assert out.read_text().split()[:2] == ["early", "completed"]
    assert queue.get("early").runs == 1 and queue.get("early").state == "completed"
