"""Issue 25, work that never runs: dependencies that race their dependency's
outcome, dependencies on ids that are no job yet, requeue against dependencies
and unique keys, unique keys whose holder was pruned; and the pruner's own
guards (retrying jobs, a requeue racing the prune)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

import psycopg2
import pytest

from queuectl_tui.clock import Ids
from queuectl_tui.engine import enqueue as enqueue_module
from queuectl_tui.engine import transitions
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.errors import Conflict
from tests.helpers import cli_env, cli_json, run_cli, wait_for
from tests.workers.test_pool_lifecycle import enqueue, state_of, wait_state

PG_ONLY = pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)],
                                  indirect=True)


def other_queue(queue: Queue) -> Queue:
    """A second engine on the same database: used from another thread, it has a
    connection of its own (peewee's connections are per thread)."""
    return Queue(queue.opened, clock=queue.clock, ids=Ids(random.Random(8)), host="testhost")


def run_beside(db_url: str, action, timeout: float = 10.0) -> threading.Thread:
    """Start `action` in a thread (its own PostgreSQL connection) and return once it
    has finished or waits for a row lock the caller's open transaction holds."""
    failures: list[BaseException] = []

    def body():
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            failures.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.failures = failures  # type: ignore[attr-defined]
    watcher = psycopg2.connect(db_url)
    watcher.autocommit = True
    try:
        thread.start()
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while thread.is_alive() and not deadline.is_set():
                with watcher.cursor() as cur:
                    cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                "current_database() AND wait_event_type = 'Lock'")
                    if cur.fetchone()[0]:
                        break
                thread.join(0.01)
        finally:
            timer.cancel()
        assert not deadline.is_set(), "the other transaction neither ended nor waited"
    finally:
        watcher.close()
    return thread


def finish(queue: Queue, claimed, exit_code: int = 0) -> None:
    queue.finish(claimed, "w", exit_code=exit_code,
                 error=None if exit_code == 0 else f"exit code {exit_code}")


# ------------------------------------------------------------------ 1: racing outcomes

@PG_ONLY
@pytest.mark.parametrize("ends", ["completed", "dead", "cancelled", "deleted"])
def test_a_dependency_ending_while_its_dependent_is_enqueued(db, queue, monkeypatch, ends):
    """The dependency A ends (or is deleted) from another connection while the
    enqueue of B --after A is between its check of A and its commit. Before the
    fix, A's transaction could not see B, and B stayed blocked for good."""
    queue.enqueue(JobSpec(command="true", id="A", max_retries=0))
    beside = other_queue(queue)
    claimed = beside.claim("w", 30) if ends in ("completed", "dead") else None

    def end_a():
        if ends == "completed":
            finish(beside, claimed)
        elif ends == "dead":
            finish(beside, claimed, exit_code=1)
        elif ends == "cancelled":
            beside.cancel(["A"])
        else:
            beside.delete(["A"])

    original = enqueue_module.insert_job_rows
    threads = []

    def insert_then_race(ctx, columns, rows):
        original(ctx, columns, rows)
        if ctx is queue.ctx and not threads:  # inside B's enqueue, before its commit
            threads.append(run_beside(db, end_a))

    monkeypatch.setattr(enqueue_module, "insert_job_rows", insert_then_race)
    queue.enqueue(JobSpec(command="true", id="B", after=("A",)))
    threads[0].join(20)
    assert not threads[0].is_alive() and not threads[0].failures
    b = queue.get("B")
    expected = "pending" if ends == "completed" else "cancelled"
    assert b.state == expected, f"B is {b.state} after A {ends}"


@PG_ONLY
def test_two_dependencies_completing_together_release_their_dependent(db, queue,
                                                                    monkeypatch):
    """B waits for A1 and A2, which complete in two transactions at once: each
    saw the other still running, and B stayed blocked with both completed."""
    from queuectl_tui.engine import dependencies
    queue.enqueue_many([JobSpec(command="true", id="A1"), JobSpec(command="true", id="A2")])
    queue.enqueue(JobSpec(command="true", id="B", after=("A1", "A2")))
    beside = other_queue(queue)
    first, second = queue.claim("w", 30), beside.claim("w2", 30)
    assert {first.id, second.id} == {"A1", "A2"}
    original = dependencies.on_final
    threads = []

    def release_then_race(db_, job_id, *args):
        original(db_, job_id, *args)
        if job_id == first.id and not threads:  # inside the first outcome's transaction
            threads.append(run_beside(db, lambda: finish(beside, second)))

    monkeypatch.setattr(dependencies, "on_final", release_then_race)
    finish(queue, first)
    threads[0].join(20)
    assert not threads[0].is_alive() and not threads[0].failures
    assert queue.get("B").state == "pending"


@PG_ONLY
def test_a_dependency_completing_while_its_dependent_is_requeued(db, queue, monkeypatch):
    """The same race for a requeue: B (cancelled while it waited) is requeued
    while A completes beside it. B goes back to blocked only if A's outcome will
    see it; it must end pending either way."""
    queue.enqueue(JobSpec(command="true", id="A"))
    queue.enqueue(JobSpec(command="true", id="B", after=("A",)))
    queue.cancel(["B"])
    beside = other_queue(queue)
    claimed = beside.claim("w", 30)
    original = transitions.move
    threads = []

    def move_then_race(ctx, job, to, **kwargs):
        moved = original(ctx, job, to, **kwargs)
        if ctx is queue.ctx and job.id == "B" and not threads:  # inside the requeue
            threads.append(run_beside(db, lambda: finish(beside, claimed)))
        return moved

    monkeypatch.setattr(transitions, "move", move_then_race)
    queue.requeue(["B"])
    threads[0].join(20)
    assert not threads[0].is_alive() and not threads[0].failures
    assert queue.get("B").state == "pending"


def test_dependents_enqueued_while_a_real_pool_finishes_their_dependencies(db, pools):
    """The issue's repro through the engine beside a real pool: A_i runs 50 ms,
    B_i --after A_i is enqueued 0-120 ms later, so many land while A_i
    finishes. Before the fix about one in five B stayed blocked on PostgreSQL."""
    from queuectl_tui.engine.storage.opening import open_database
    opened = open_database(db)
    try:
        queue = Queue(opened)
        pools(2, QUEUECTL_UNBLOCK_EVERY="0").wait_ready()  # the normal path alone
        rng = random.Random(25)
        for i in range(150):
            queue.enqueue(JobSpec(command="sleep 0.05", id=f"A{i}"))
            time.sleep(rng.random() * 0.12)  # the race's spread, not a synchronisation
            queue.enqueue(JobSpec(command="true", id=f"B{i}", after=(f"A{i}",)))
        wait_for(lambda: queue.counts()["completed"] + queue.counts()["blocked"] == 300, 120,
                 message="every job to complete or stay blocked")
        assert queue.counts()["blocked"] == 0, [j.id for j in queue.jobs(state="blocked")]
    finally:
        opened.close()


def test_jobs_the_old_race_left_blocked_are_settled_by_a_pool(db, pools):
    """A database written by an older version: blocked jobs whose dependencies
    completed, were pruned, or ended dead or cancelled, with nothing to release
    them (made here by writing the dependencies' outcomes without their moves).
    A pool started on it settles them by the normal moves and events; a job
    that rightly waits stays blocked."""
    from queuectl_tui.engine.storage.opening import open_database
    opened = open_database(db)
    try:
        queue = Queue(opened)
        for name in ("W", "A", "P1", "P2", "D", "C"):
            queue.enqueue(JobSpec(command="true", id=name, delay=3600))
        for name, after in (("F", ("W",)), ("B", ("A",)), ("Q", ("P1", "P2")),
                            ("E", ("D",)), ("H", ("E",)), ("G", ("C", "W"))):
            queue.enqueue(JobSpec(command="true", id=name, after=after))
        sql = opened.db.execute_sql
        mark = opened.db.param
        for name, state in (("A", "completed"), ("P1", "completed"), ("D", "dead"),
                            ("C", "cancelled")):
            sql(f"UPDATE job SET state = {mark} WHERE id = {mark}", (state, name))
        sql(f"DELETE FROM job WHERE id = {mark}", ("P2",))  # pruned
        assert {j.id for j in queue.jobs(state="blocked")} == set("FBQEHG")
        pools(1)
        final = {"B": "completed", "Q": "completed", "E": "cancelled", "H": "cancelled",
                 "G": "cancelled"}
        wait_for(lambda: all(queue.get(i).state == s for i, s in final.items()), 30,
                 message="the stuck jobs to be settled")
        assert queue.get("F").state == "blocked"
        assert queue.get("E").last_error == "dependency D ended dead"
        assert queue.get("H").last_error == "dependency E ended cancelled"
        assert queue.get("G").last_error == "dependency C ended cancelled"
        moves = [(e["from"], e["to"], e["note"]) for e in queue.history("B")][::-1]
        assert moves[:2] == [(None, "blocked", None), ("blocked", "pending",
                             "released: every dependency had completed (found stuck)")]
        assert [(e["from"], e["to"]) for e in queue.history("H")][::-1] == \
            [(None, "blocked"), ("blocked", "cancelled")]
    finally:
        opened.close()


@PG_ONLY
def test_the_stuck_job_sweep_waits_for_a_dependency_being_requeued(db, queue, monkeypatch):
    """B was left blocked after A completed; the sweep judges B while a requeue
    of A (back to pending) is between its move and its commit. The sweep holds
    A FOR SHARE before deciding, so it waits and then sees A pending: B stays
    blocked for A's new run instead of being released ahead of it."""
    queue.enqueue(JobSpec(command="true", id="A", delay=3600))
    queue.enqueue(JobSpec(command="true", id="B", after=("A",)))
    queue.db.execute_sql("UPDATE job SET state = 'completed' WHERE id = 'A'")  # no move
    beside = other_queue(queue)
    original = transitions.move
    threads = []

    def move_then_race(ctx, job, to, **kwargs):
        moved = original(ctx, job, to, **kwargs)
        if ctx is queue.ctx and job.id == "A" and not threads:  # inside the requeue
            threads.append(run_beside(db, beside.release_stuck))
        return moved

    monkeypatch.setattr(transitions, "move", move_then_race)
    queue.requeue(["A"])
    threads[0].join(20)
    assert not threads[0].is_alive() and not threads[0].failures
    assert (queue.get("A").state, queue.get("B").state) == ("pending", "blocked")


def test_the_stuck_job_sweep_reads_a_bounded_batch_by_index(db, queue):
    """Each call looks at `limit` blocked jobs after the seq it is given and
    says where to go on; a full pass settles every stuck one and ends at 0."""
    queue.enqueue(JobSpec(command="true", id="A", delay=3600))
    queue.enqueue_many([JobSpec(command="true", id=f"B{i}", after=("A",))
                        for i in range(25)])
    queue.db.execute_sql("UPDATE job SET state = 'completed' WHERE id = 'A'")
    moved, after, calls = [], 0, 0
    while True:
        batch, after = queue.release_stuck(after, limit=10)
        moved += batch
        calls += 1
        if not after:
            break
        assert len(batch) == 10
    assert calls == 3 and moved == [(f"B{i}", "pending") for i in range(25)]
    assert queue.release_stuck() == ([], 0)
    sql = queue.backend.blocked_page_sql.format(p=queue.db.param)
    if queue.backend.name == "sqlite":
        plan = " ".join(map(str, queue.db.execute_sql("EXPLAIN QUERY PLAN " + sql, (0, 200))))
        assert "job_state_seq (state=? AND seq>?)" in plan and "TEMP" not in plan, plan
    else:  # not the primary key (filtering every finished job), even on a tiny table
        queue.db.execute_sql("SET enable_seqscan = off")
        plan = " ".join(r[0] for r in queue.db.execute_sql("EXPLAIN " + sql, (0, 200)))
        queue.db.execute_sql("RESET enable_seqscan")
        assert "job_state_seq" in plan and "job_pkey" not in plan, plan


# ------------------------------------------------------------------ 2: ids that are no job

def test_after_an_id_a_bulk_enqueue_is_still_writing_is_no_job(db, tmp_path):
    """A bulk enqueue of named ids is killed between slices: its rows exist,
    staged, and `show` says no job. `--after` one of them is refused the same
    way (exit 3) instead of waiting for a job that is discarded."""
    from queuectl_tui.engine.storage.models import Batch, Job
    from queuectl_tui.engine.storage.opening import open_database
    path = tmp_path / "bulk.jsonl"
    path.write_text("".join(f'{{"id": "N{i}", "command": "true"}}\n' for i in range(60_000)))
    bulk = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "enqueue", "--file",
                             str(path)], env=cli_env(db), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    opened = open_database(db)
    try:
        def staged() -> bool:
            return Job.select().where(Job.state == "staged").exists()

        wait_for(lambda: bulk.poll() is not None or staged(), 120, interval=0.005,
                 message="the bulk enqueue's first slice")
        bulk.send_signal(signal.SIGKILL)
        bulk.wait()
        assert staged() and Batch.select().where(Batch.sealed_at.is_null()).exists(), \
            "the kill was meant to land between the slices, before the seal"
    finally:
        opened.close()
    assert run_cli(db, "show", "N5").returncode == 3
    refused = run_cli(db, "enqueue", "--id", "after-n5", "--after", "N5", "true")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "'N5', which is no job" in refused.stderr
    assert run_cli(db, "show", "after-n5").returncode == 3


def test_a_dependency_that_was_pruned_counts_as_completed(queue, clock):
    """Only finished jobs are pruned: B waits for A1 (completed, then pruned) and
    A2; when A2 completes B runs."""
    queue.enqueue_many([JobSpec(command="true", id="A1"),
                        JobSpec(command="true", id="A2", run_at=clock.now() + 3600)])
    queue.enqueue(JobSpec(command="true", id="B", after=("A1", "A2")))
    finish(queue, queue.claim("w", 30))
    clock.advance(1)
    assert queue.prune(older_than=0)[0].counts == {"completed": 1}
    assert queue.waiting_for("B") == [{"id": "A1", "state": None},
                                      {"id": "A2", "state": "pending"}]
    clock.advance(3600)
    finish(queue, queue.claim("w", 30))
    assert queue.get("B").state == "pending"


# ------------------------------------------------------------------ 3: requeue and after

def test_requeue_honours_dependencies(db, pools, tmp_path):
    """A dies, so B (after A) and C (after B) are cancelled. Requeuing C alone,
    or B and C, is refused: what they wait for ended dead or cancelled and would
    never run. Requeuing all three runs them again in order."""
    flag, order = tmp_path / "flag", tmp_path / "order"
    enqueue(db, f"test -f {flag} && echo A >> {order}", "--id", "A", "--max-retries", "0")
    enqueue(db, f"echo B >> {order}", "--id", "B", "--after", "A")
    enqueue(db, f"echo C >> {order}", "--id", "C", "--after", "B")
    pool = pools(1)
    wait_state(db, "C", "cancelled")
    alone = run_cli(db, "requeue", "C")
    assert alone.returncode == 4, alone.stdout + alone.stderr
    assert "job C waits for B, which ended cancelled" in alone.stderr
    both = run_cli(db, "requeue", "C", "B")
    assert both.returncode == 4 and "job B waits for A, which ended dead" in both.stderr
    assert {j: state_of(db, j)["state"] for j in "ABC"} == \
        {"A": "dead", "B": "cancelled", "C": "cancelled"}
    pool.close()  # nothing claims while we look at the states the requeue set
    flag.touch()
    assert run_cli(db, "requeue", "C", "B", "A").returncode == 0
    assert {j: state_of(db, j)["state"] for j in "ABC"} == \
        {"A": "pending", "B": "blocked", "C": "blocked"}
    pools(1)
    wait_state(db, "C", "completed")
    assert order.read_text().split() == ["A", "B", "C"]


def test_a_cancelled_waiting_job_requeued_waits_again(db):
    """B was cancelled while it waited for A; A is still pending: requeued, B is
    blocked again, not pending (it must not run before A)."""
    enqueue(db, "true", "--id", "A", "--delay", "1h")
    enqueue(db, "true", "--id", "B", "--after", "A")
    assert run_cli(db, "cancel", "B").returncode == 0
    assert run_cli(db, "requeue", "B").returncode == 0
    assert state_of(db, "B")["state"] == "blocked"
    assert run_cli(db, "cancel", "A").returncode == 0
    assert state_of(db, "B")["last_error"] == "dependency A ended cancelled"


def test_dlq_retry_of_a_job_whose_dependency_runs_again_waits_for_it(queue):
    queue.enqueue(JobSpec(command="true", id="A"))
    queue.enqueue(JobSpec(command="false", id="B", after=("A",), max_retries=0))
    finish(queue, queue.claim("w", 30))
    finish(queue, queue.claim("w", 30), exit_code=1)
    queue.requeue(["A"])
    queue.retry_dead(["B"])
    assert (queue.get("A").state, queue.get("B").state) == ("pending", "blocked")
    finish(queue, queue.claim("w", 30))
    assert queue.get("B").state == "pending"


# ------------------------------------------------------------------ 4: requeue and keys

def test_requeue_takes_the_unique_key_again_or_is_refused(db):
    enqueue(db, "true", "--id", "X", "--unique-key", "K")
    assert run_cli(db, "cancel", "X").returncode == 0
    enqueue(db, "true", "--id", "Y", "--unique-key", "K")
    refused = run_cli(db, "requeue", "X")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "a job with unique key 'K' exists: Y; nothing was requeued" in refused.stderr
    assert state_of(db, "X")["state"] == "cancelled"
    assert run_cli(db, "cancel", "Y").returncode == 0
    assert run_cli(db, "requeue", "X").returncode == 0  # free again: X takes it
    again = run_cli(db, "enqueue", "--unique-key", "K", "true")
    assert again.returncode == 4 and "exists: X" in again.stderr
    twice = run_cli(db, "requeue", "Y")
    assert twice.returncode == 4 and "exists: X" in twice.stderr


def test_a_requeued_job_takes_its_own_key_inside_its_window(queue, clock):
    job = queue.enqueue(JobSpec(command="true", unique_key="k", unique_for=3600))["id"]
    finish(queue, queue.claim("w", 30))
    clock.advance(60)
    queue.requeue([job])  # its own lock, still inside --unique-for: its to take
    finish(queue, queue.claim("w", 30))
    queue.cancel([queue.enqueue(JobSpec(command="true", id="z"))["id"]])
    with pytest.raises(Conflict, match=f"exists: {job}"):
        queue.enqueue(JobSpec(command="true", unique_key="k"))


# ------------------------------------------------------------------ 5: a pruned key holder

def test_if_absent_answers_for_a_holder_pruned_inside_its_window(db, pools):
    """The nightly pattern of docs/schedules.md with a retention shorter than --unique-for:
    the holder is pruned, the key still holds it, and --if-absent still answers."""
    nightly = ("--unique-key", "nightly", "--unique-for", "1d")
    enqueue(db, "true", "--id", "U1", *nightly)
    pools(1)
    wait_state(db, "U1", "completed")
    assert cli_json(db, "prune", "--older-than", "0s")["pruned"] == 1
    assert run_cli(db, "show", "U1").returncode == 3
    answer = run_cli(db, "enqueue", *nightly, "--if-absent", "true")
    assert (answer.returncode, answer.stdout) == (0, "exists U1\n"), answer.stderr
    shown = cli_json(db, "enqueue", *nightly, "--if-absent", "true")
    assert shown["id"] == "U1" and shown["existing"] and shown["pruned"]
    assert shown["state"] is None and shown["unique_until"]
    refused = run_cli(db, "enqueue", *nightly, "true")
    assert refused.returncode == 4
    assert "exists: U1 (finished and since pruned" in refused.stderr
    assert [j["id"] for j in cli_json(db, "list")] == []


# ------------------------------------------------------------------ the pruner's guards

def test_the_pool_never_prunes_a_job_waiting_for_its_retry(db, pools):
    """A failed run leaves the job `failed` with a finished_at, waiting for its
    next try. Past every retention, the pool's pruner still keeps it."""
    for key in ("retention-completed", "retention-dead", "retention-cancelled"):
        assert run_cli(db, "config", "set", key, "1").returncode == 0
    assert run_cli(db, "config", "set", "backoff-base", "3600").returncode == 0
    enqueue(db, "exit 3", "--id", "F", "--max-retries", "5")
    pools(1, QUEUECTL_PRUNE_EVERY="0.2")
    failed = wait_state(db, "F", "failed")
    assert failed["finished_at"] is not None
    finished = datetime.fromisoformat(failed["finished_at"]).timestamp()
    wait_for(lambda: time.time() > finished + 1.5, 10, message="F to pass its retention")
    enqueue(db, "true", "--id", "M")  # finished after F: pruned by a later rule than F
    wait_for(lambda: run_cli(db, "show", "M").returncode == 3, 60,
             message="the pruner to remove M")
    assert state_of(db, "F")["state"] == "failed"


def test_prune_never_deletes_a_retrying_job(queue, clock):
    queue.enqueue(JobSpec(command="false", id="F", max_retries=5))
    finish(queue, queue.claim("w", 30), exit_code=1)
    assert queue.get("F").state == "failed" and queue.get("F").finished_at is not None
    clock.advance(400 * 86400)
    assert queue.prune()[0].total == 0 and queue.prune(older_than=0)[0].total == 0
    assert queue.get("F").state == "failed"


@PG_ONLY
def test_a_requeue_between_the_prunes_select_and_delete_is_kept(db, queue, clock,
                                                                 monkeypatch):
    """The prune picks a finished job, then a real `requeue` commits before the
    prune's DELETE (PostgreSQL: the SELECT holds no lock). The DELETE repeats its
    rule, so the job, pending again, stays."""
    from queuectl_tui.engine import retention
    queue.enqueue(JobSpec(command="true", id="R"))
    finish(queue, queue.claim("w", 30))
    clock.advance(1)
    original = retention._select
    requeued = []

    def select_then_requeue(db_, rule, limit):
        picked = original(db_, rule, limit)
        if picked and not requeued:
            assert [job_id for _, job_id in picked] == ["R"]
            requeued.append(run_cli(db, "requeue", "R"))
        return picked

    monkeypatch.setattr(retention, "_select", select_then_requeue)
    pruned, _ = queue.prune(older_than=0)
    assert requeued and requeued[0].returncode == 0, requeued and requeued[0].stderr
    assert pruned.total == 0
    assert queue.get("R").state == "pending"
