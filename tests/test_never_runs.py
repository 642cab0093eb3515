"""Issue 25, work that never runs: dependencies that race their dependency's
outcome, dependencies on ids that are no job yet, requeue against dependencies
and unique keys, unique keys whose holder was pruned; and the pruner's own
guards (retrying jobs, a requeue racing the prune)."""

from __future__ import annotations

import random
import threading

import psycopg2
import pytest

from queuectl_tui.clock import Ids
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue

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

    original = Queue.insert_job_rows
    threads = []

    def insert_then_race(self, columns, rows):
        original(self, columns, rows)
        if self is queue and not threads:  # inside B's enqueue, before its commit
            threads.append(run_beside(db, end_a))

    monkeypatch.setattr(Queue, "insert_job_rows", insert_then_race)
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
