"""Issue 10: named queues, concurrency limits, pause/resume and retention.
Engine rules with an injected clock; limits, pause and pruning through real
pools on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.storage.models import Attempt, Event, Job
from tests.helpers import cli_json, run_cli, wait_for
from tests.workers.test_pool_lifecycle import enqueue, state_of, wait_state


# ------------------------------------------------------------------ engine rules

def claim_queue(queue, worker="w"):
    claimed = queue.claim(worker, 30)
    return claimed and claimed.queue


def test_every_job_has_a_queue_and_a_queue_exists_once_named(queue):
    queue.enqueue(JobSpec(command="true"))
    queue.enqueue(JobSpec(command="true", queue="mail"))
    queue.queue_set("reports", max_running=3)  # a setting names it: it exists
    listed = {q["name"]: q for q in queue.queue_list()}
    assert set(listed) == {"default", "mail", "reports"}
    assert listed["mail"]["counts"] == {"pending": 1} and listed["reports"]["limit"] == 3
    assert {j.queue for j in queue.jobs()} == {"default", "mail"}


def test_served_queues_are_taken_in_the_order_given(queue, clock):
    for name in ("low", "high", "low", "high", "other"):
        queue.enqueue(JobSpec(command="true", queue=name))
    queue.serving = ["high", "low"]
    assert [claim_queue(queue) for _ in range(5)] == ["high", "high", "low", "low", None]
    queue.serving = None
    assert claim_queue(queue) == "other"


def test_every_queue_is_one_global_order_by_priority_then_age(queue, clock):
    queue.enqueue(JobSpec(command="true", queue="b", id="b-old"))
    clock.advance(1)
    queue.enqueue(JobSpec(command="true", queue="a", id="a-new"))
    queue.enqueue(JobSpec(command="true", queue="c", id="c-urgent", priority=5))
    assert [queue.claim("w", 30).id for _ in range(3)] == ["c-urgent", "b-old", "a-new"]


def test_a_paused_queue_is_skipped_and_does_not_wake_workers(queue):
    queue.enqueue(JobSpec(command="true", queue="p"))
    queue.queue_set("p", paused=True)
    assert not queue.has_due_job() and queue.next_run_at() is None
    assert queue.claim("w", 30) is None
    queue.enqueue(JobSpec(command="true"))  # enqueues are still accepted
    assert claim_queue(queue) == "default"
    queue.queue_set("p", paused=False)
    assert queue.has_due_job() and claim_queue(queue) == "p"


def test_a_full_queue_is_skipped_until_a_job_finishes(queue):
    for _ in range(3):
        queue.enqueue(JobSpec(command="true", queue="lim"))
    queue.enqueue(JobSpec(command="true", queue="free"))
    queue.queue_set("lim", max_running=1)
    first = queue.claim("w1", 30)
    assert first.queue == "lim"
    assert claim_queue(queue, "w2") == "free"  # other queues' jobs meanwhile
    assert queue.claim("w3", 30) is None and not queue.has_due_job()
    queue.finish(first, "w1", exit_code=0, error=None)
    assert queue.has_due_job() and claim_queue(queue, "w3") == "lim"
    queue.queue_set("lim", max_running=None)
    assert claim_queue(queue, "w4") == "lim"


def test_claim_uses_the_per_queue_index_on_sqlite(tmp_path):
    import sqlite3
    from queuectl_tui.engine.storage.backends.sqlite import SqliteBackend
    from queuectl_tui.engine.storage.opening import open_database
    opened = open_database(str(tmp_path / "q.db"))
    opened.close()
    conn = sqlite3.connect(tmp_path / "q.db")
    sql = SqliteBackend.claim_sql
    plan = " ".join(str(row) for row in conn.execute(
        "EXPLAIN QUERY PLAN " + sql, ("w", "t", 1.0, 1.0, 2.0, "h", "p", "default", 1.0, "w")))
    assert "job_claim_q" in plan and "TEMP B-TREE" not in plan, plan
    # a gated claim (per-key limits, capacity) walks the same index
    gated = SqliteBackend.claim_template.format(
        extra=" AND (key IS NULL OR key NOT IN (?)) AND COALESCE(cpus, 0) <= ?")
    plan = " ".join(str(row) for row in conn.execute(
        "EXPLAIN QUERY PLAN " + gated,
        ("w", "t", 1.0, 1.0, 2.0, "h", "p", "default", 1.0, "k", 2.0, "w")))
    assert "job_claim_q" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("bad", ["", "has space", "-dash", "x" * 33, "naïve", "a/b"])
def test_bad_queue_names_are_refused_and_nothing_is_stored(db, bad):
    result = run_cli(db, "enqueue", f"--queue={bad}", "true")
    assert result.returncode == 2 and "invalid queue name" in result.stderr
    as_json = run_cli(db, "enqueue", json.dumps({"command": "true", "queue": bad}))
    assert as_json.returncode == 2 and "queue" in as_json.stderr
    assert run_cli(db, "queue", "limit", bad, "2").returncode == 2
    listed = run_cli(db, "list", "--json")
    assert listed.returncode == 5 or json.loads(listed.stdout) == []


def test_queue_commands_answer_and_refuse_bad_values(db):
    enqueue(db, "true", "--queue", "mail")
    assert run_cli(db, "queue", "limit", "mail", "-1").returncode == 2
    assert run_cli(db, "queue", "limit", "mail", "lots").returncode == 2
    assert cli_json(db, "queue", "limit", "mail", "4")["limit"] == 4
    assert cli_json(db, "queue", "limit", "mail", "none")["limit"] is None
    missing = run_cli(db, "queue", "retention", "nosuch")
    assert missing.returncode == 3 and "no queue named" in missing.stderr
    paused = cli_json(db, "queue", "pause", "mail")
    assert paused[0]["paused"] is True
    status = run_cli(db, "status")
    assert "mail" in status.stdout and "PAUSED" in status.stdout
    assert cli_json(db, "status", "--queue", "mail")["counts"]["pending"] == 1
    assert [j["queue"] for j in cli_json(db, "list", "--queue", "mail")] == ["mail"]
    assert cli_json(db, "list", "--queue", "default") == []


# ------------------------------------------------------------------ real pools

def interval_log(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.log"
    path.touch()
    return path


def overlapping(path: Path) -> int:
    """Most jobs running at once, from 'start T' / 'end T' lines."""
    marks = []
    for line in path.read_text().splitlines():
        kind, stamp = line.split()
        marks.append((float(stamp), 0 if kind == "end" else 1, kind))  # ends first at a tie
    running = peak = 0
    for _, _, kind in sorted(marks):
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    return peak


def timed_job(path: Path, seconds: float) -> str:
    # date +%s.%N on both ends: the interval is the job's own run.
    return (f"echo start $(date +%s.%N) >> {path}; sleep {seconds}; "
            f"echo end $(date +%s.%N) >> {path}")


def test_limit_holds_under_eight_workers_in_two_pools(db, pools, tmp_path):
    log = interval_log(tmp_path, "limited")
    other = interval_log(tmp_path, "other")
    assert run_cli(db, "queue", "limit", "lim", "2").returncode == 0
    lines = [json.dumps({"command": timed_job(log, 0.3), "queue": "lim"}) for _ in range(16)]
    lines += [json.dumps({"command": timed_job(other, 0.3), "queue": "bulk"}) for _ in range(16)]
    (tmp_path / "jobs.jsonl").write_text("\n".join(lines) + "\n")
    assert run_cli(db, "enqueue", "--file", str(tmp_path / "jobs.jsonl")).returncode == 0
    pools(4)
    pools(4)
    wait_for(lambda: cli_json(db, "status")["counts"]["completed"] == 32, 90,
             message="every job to complete")
    assert overlapping(log) == 2, "the limit of 2 was exceeded or never reached"
    assert overlapping(other) >= 3, "the unlimited queue did not run beside the limited one"


def test_pause_stops_claims_at_once_and_resume_restarts_them(db, pools, tmp_path):
    pools(2).wait_ready()
    assert run_cli(db, "queue", "pause", "later").returncode == 0
    held = [enqueue(db, "true", "--queue", "later") for _ in range(3)]
    free = enqueue(db, "true")
    wait_state(db, free, "completed")
    # the pool is idle and the paused queue's jobs stay put (and do not spin it)
    assert {state_of(db, j)["state"] for j in held} == {"pending"}
    resumed = time.monotonic()
    assert run_cli(db, "queue", "resume", "later").returncode == 0
    for job in held:
        wait_state(db, job, "completed", timeout=20)
    assert time.monotonic() - resumed < 5


def test_pause_lets_running_jobs_finish_and_claims_nothing_new(db, pools, tmp_path):
    log = interval_log(tmp_path, "paused")
    jobs = [enqueue(db, timed_job(log, 2), "--queue", "slow") for _ in range(6)]
    pools(2)
    wait_for(lambda: cli_json(db, "queue", "list")[-1]["running"] == 2, 20,
             message="two jobs running")
    paused_at = time.time()
    assert run_cli(db, "queue", "pause", "slow").returncode == 0
    wait_for(lambda: cli_json(db, "queue", "list")[-1]["running"] == 0, 20,
             message="the running jobs to finish")
    starts = [float(line.split()[1]) for line in log.read_text().splitlines()
              if line.startswith("start")]
    assert len(starts) == 2 and all(s < paused_at for s in starts)
    states = [state_of(db, j)["state"] for j in jobs]
    assert states.count("completed") == 2 and states.count("pending") == 4


def test_worker_serving_named_queues_leaves_the_rest(db, pools):
    mine = enqueue(db, "true", "--queue", "mine")
    theirs = enqueue(db, "true", "--queue", "theirs")
    pools(1, extra=("--queues", "mine"))
    wait_state(db, mine, "completed")
    workers = cli_json(db, "worker", "list")
    assert workers[0]["queues"] == ["mine"]
    assert state_of(db, theirs)["state"] == "pending"
    bad = run_cli(db, "worker", "start", "--queues", "a b")
    assert bad.returncode == 2 and "invalid queue name" in bad.stderr


# ------------------------------------------------------------------ retention

def finished_jobs(queue, clock, n, state="completed", queue_name=None):
    ids = []
    for _ in range(n):
        job = queue.enqueue(JobSpec(command="true", queue=queue_name))
        claimed = queue.claim("w", 30)
        queue.finish(claimed, "w", exit_code=0 if state == "completed" else 1,
                     error=None if state == "completed" else "boom")
        ids.append(job["id"])
    return ids


def test_prune_removes_job_events_attempts_and_log_together(queue, clock):
    from queuectl_tui.engine import logs
    old = finished_jobs(queue, clock, 3)
    seqs = [queue.get(i).seq for i in old]
    for seq in seqs:
        os.close(logs.open_for_append(queue.opened.log_dir, seq))
    clock.advance(8 * 86400)
    fresh = finished_jobs(queue, clock, 2)
    waiting = queue.enqueue(JobSpec(command="true"))["id"]
    dry, _ = queue.prune(dry_run=True)
    assert dry.counts == {"completed": 3} and Job.select().count() == 6
    pruned, done = queue.prune()
    assert done and pruned.counts == {"completed": 3}
    assert {j.id for j in queue.jobs()} == {*fresh, waiting}
    assert Event.select().where(Event.job_id.in_(old)).count() == 0
    assert Attempt.select().where(Attempt.job_id.in_(old)).count() == 0
    assert not any(logs.log_path(queue.opened.log_dir, s).exists() for s in seqs)
    assert Event.select().where(Event.job_id.in_(fresh)).count() > 0


def test_retention_per_state_per_queue_and_forever(queue, clock):
    queue.config_set("max-retries", 0)
    done = finished_jobs(queue, clock, 2)
    dead = finished_jobs(queue, clock, 2, state="dead")
    kept = finished_jobs(queue, clock, 2, queue_name="keep")
    quick = finished_jobs(queue, clock, 2, state="dead", queue_name="quick")
    queue.queue_set("keep", keep_completed=0)  # forever
    queue.queue_set("quick", keep_dead=60)
    clock.advance(120)
    pruned, _ = queue.prune()
    assert pruned.counts == {"dead": 2}  # only quick's dead jobs are past their time
    clock.advance(8 * 86400)
    pruned, _ = queue.prune()
    assert pruned.counts == {"completed": 2}  # default's; keep's stay for ever
    clock.advance(30 * 86400)
    pruned, _ = queue.prune()
    assert pruned.counts == {"dead": 2}
    assert {j.id for j in queue.jobs()} == set(kept)
    assert not set(done + dead + quick) & {j.id for j in queue.jobs()}
    queue.config_set("retention-completed", "forever")
    assert queue.prune(older_than=1)[0].counts == {"completed": 2}  # explicit age wins


def test_prune_in_small_batches_and_resumable(queue, clock):
    finished_jobs(queue, clock, 12)
    clock.advance(8 * 86400)
    from queuectl_tui.engine import retention
    rules = retention.rules_now({"completed": 1.0, "dead": 0, "cancelled": 0}, clock.now())
    first, done = retention.prune(queue.db, rules, queue.opened.log_dir, max_batches=2,
                                  batch_rows=5)
    assert (first.total, done) == (10, False)
    rest, done = retention.prune(queue.db, rules, queue.opened.log_dir, batch_rows=5)
    assert (rest.total, done) == (2, True)


def test_only_one_pruner_holds_the_lease(queue, clock):
    assert queue.take_prune_lease("host-a:1")
    assert not queue.take_prune_lease("host-b:2")
    assert queue.take_prune_lease("host-a:1")  # renewing
    clock.advance(61)
    assert queue.take_prune_lease("host-b:2")  # the holder went quiet


def test_prune_command(db):
    job = enqueue(db, "true")
    assert run_cli(db, "prune", "--state", "pending").returncode == 2
    assert run_cli(db, "prune", "--older-than", "soon").returncode == 2
    assert cli_json(db, "prune", "--dry-run")["pruned"] == 0
    assert state_of(db, job)["state"] == "pending"


def test_pruning_under_load_loses_no_unfinished_job(db, pools, tmp_path):
    """Retention of one second, the pool's own pruner, a stream of jobs: every
    job runs, and completed ones leave the database."""
    ran = tmp_path / "ran"
    ran.mkdir()
    assert run_cli(db, "config", "set", "retention-completed", "1").returncode == 0
    pools(2, QUEUECTL_PRUNE_EVERY="0.5")
    ids = []
    for batch in range(4):
        lines = [json.dumps({"id": f"j{batch}-{i}", "command": f"touch {ran}/j{batch}-{i}",
                             "queue": "a" if i % 2 else "b"}) for i in range(150)]
        (tmp_path / "b.jsonl").write_text("\n".join(lines) + "\n")
        assert run_cli(db, "enqueue", "--file", str(tmp_path / "b.jsonl")).returncode == 0
        ids += [f"j{batch}-{i}" for i in range(150)]
    wait_for(lambda: len(os.listdir(ran)) == len(ids), 120, message="every job to run")
    wait_for(lambda: cli_json(db, "status")["total"] == 0, 60,
             message="the completed jobs to be pruned")
    assert sorted(os.listdir(ran)) == sorted(ids)
