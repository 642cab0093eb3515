"""The backend contract: the same checks against SQLite and PostgreSQL.

Each backend (`Opened.backend`) writes its own SQL for the few operations where
the two databases differ: the claim, the queues' heads, publishing a staged
bulk enqueue, wake-ups, row locks for a decision, and how writers exclude each
other. Whatever the SQL, the meaning must be one, so every check here runs on
both (PostgreSQL when QUEUECTL_TEST_PG is set, see tests/conftest.py).

"Another connection" is the same database used from another thread: Peewee
keeps one connection per thread. A connection that must not wait for a lock
is told so (SQLite: busy_timeout 0; PostgreSQL: lock_timeout), so a lock that
is held shows as an immediate refusal, and no check needs a sleep.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any, Callable

import peewee as pw
import pytest

from queuectl_tui.engine import JobSpec, Queue, backend_for, register_worker

DEADLINE_S = 30.0
LEASE_S = 60.0
# The job columns a raw row needs (the rest have defaults or may be NULL).
COLUMNS = ("id", "command", "state", "attempts", "max_retries", "priority", "run_at",
           "created_at", "updated_at", "queue")


def writers_take_turns(queue: Queue) -> bool:
    """SQLite has one writer at a time: a second writer is refused while the
    first's transaction is open, where PostgreSQL locks rows one by one."""
    return queue.backend.name == "sqlite"


def sql(queue: Queue, statement: str, *params: Any) -> list[tuple]:
    """A statement written with `?`, run on this thread's connection; its rows, if any."""
    cursor = queue.db.execute_sql(statement.replace("?", queue.db.param), params)
    return cursor.fetchall() if cursor.description else []


def claim(queue: Queue, worker_id: str = "w", queues: tuple[str, ...] = ("default",)) -> Any:
    """The backend's claim, in a transaction of its own, as the engine calls it."""
    now = queue.clock.now()
    with queue.db.atomic():
        return queue.backend.claim(now, worker_id, os.urandom(8).hex(), now + LEASE_S,
                                   "testhost", list(queues))


def claimed_id(queue: Queue, worker_id: str = "w") -> str | None:
    taken = claim(queue, worker_id)
    return None if taken is None else taken.id


def state_of(queue: Queue, job_id: str) -> str:
    return sql(queue, "SELECT state FROM job WHERE id = ?", job_id)[0][0]


def enqueue(queue: Queue, job_id: str, *, priority: int = 0, ago: float = 0.0,
            name: str | None = None) -> None:
    """A pending job due `ago` seconds before now (negative: not due yet)."""
    queue.enqueue(JobSpec(command="true", id=job_id, priority=priority,
                          run_at=queue.clock.now() - ago, queue=name))


class Busy(Exception):
    """Another transaction held the lock this connection was told not to wait for."""


def on_another_connection(queue: Queue, work: Callable[[], Any], *, write: bool) -> Any:
    """Run `work` on another thread's connection that refuses to wait for a
    lock (in a transaction of its own if `write`); its result, or Busy."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            _refuse_to_wait(queue)
            if write:
                with queue.db.atomic():
                    outcome["value"] = work()
            else:
                outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - raised again on the test's thread
            if isinstance(exc, pw.OperationalError) and "lock" in str(exc):
                outcome["busy"] = Busy(str(exc))  # SQLite: locked; PostgreSQL: lock timeout
            else:
                outcome["error"] = exc
        finally:
            queue.db.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(DEADLINE_S)
    assert not thread.is_alive(), "a connection told not to wait for a lock waited"
    if "error" in outcome:
        raise outcome["error"]  # not a lock in the way: the check itself went wrong
    return outcome.get("busy", outcome.get("value"))


def _refuse_to_wait(queue: Queue) -> None:
    if queue.backend.name == "sqlite":
        queue.db.execute_sql("PRAGMA busy_timeout = 0")
    else:
        queue.db.execute_sql("SET lock_timeout = '100ms'")


def test_the_claim_takes_priority_then_due_time_then_age_and_only_due_claimable_jobs(queue):
    enqueue(queue, "low-oldest", ago=30)
    enqueue(queue, "high-later", priority=5, ago=5)
    enqueue(queue, "high-earlier", priority=5, ago=10)
    enqueue(queue, "low-tie-first", ago=20)
    enqueue(queue, "low-tie-second", ago=20)
    enqueue(queue, "not-due", priority=9, ago=-60)
    enqueue(queue, "cancelled", priority=9, ago=60)
    queue.cancel(["cancelled"])
    taken = [claimed_id(queue) for _ in range(6)]
    assert taken == ["high-earlier", "high-later", "low-oldest", "low-tie-first",
                     "low-tie-second", None]
    assert (state_of(queue, "not-due"), state_of(queue, "cancelled")) == ("pending", "cancelled")


def test_a_claim_marks_the_job_held_by_its_worker_with_its_token(queue):
    enqueue(queue, "job")
    now = queue.clock.now()
    with queue.db.atomic():
        first = queue.backend.claim(now, "w1", "token-1", now + LEASE_S, "testhost",
                                    ["default"])
    row = sql(queue, "SELECT state, worker_id, claim_token, attempts, runs, run_host, "
                     "lease_expires_at FROM job WHERE id = ?", "job")[0]
    assert row == ("processing", "w1", "token-1", 1, 1, "testhost", now + LEASE_S)
    assert (first.id, first.claim_token, first.prev_state, first.attempts, first.runs) == \
        ("job", "token-1", "pending", 1, 1)


def test_the_heads_of_queues_order_them_and_say_when_work_is_due(queue):
    enqueue(queue, "a-low", ago=50, name="a")
    enqueue(queue, "b-high", priority=5, ago=1, name="b")
    enqueue(queue, "c-later", ago=-100, name="c")
    now = queue.clock.now()
    assert queue.backend.by_head(["a", "b", "c"], now) == ["b", "a"]
    assert queue.backend.has_due_job(now, ["a"]) and not queue.backend.has_due_job(now, ["c"])
    assert queue.backend.next_run_at(["c"]) == pytest.approx(now + 100)
    assert queue.backend.next_run_at(["a", "c"]) == pytest.approx(now - 50)
    assert queue.backend.next_run_at(["empty"]) is None


def test_a_job_claimed_in_an_open_transaction_is_never_claimed_by_another_connection(queue):
    for n, job_id in enumerate(("first", "second", "third")):
        enqueue(queue, job_id, priority=3 - n)
    now = queue.clock.now()
    with queue.db.atomic():
        mine = queue.backend.claim(now, "w1", "t1", now + LEASE_S, "testhost", ["default"])
        meanwhile = on_another_connection(queue, lambda: claimed_id(queue, "w2"), write=False)
    after = on_another_connection(queue, lambda: claimed_id(queue, "w2"), write=False)
    assert mine.id == "first"
    if writers_take_turns(queue):
        assert isinstance(meanwhile, Busy) and after == "second"
    else:  # the held row is skipped, not waited for
        assert (meanwhile, after) == ("second", "third")
    assert sql(queue, "SELECT worker_id FROM job WHERE id = ?", "first") == [("w1",)]


def test_a_worker_asked_to_stop_claims_nothing(queue):
    enqueue(queue, "job")
    now = queue.clock.now()
    for worker_id in ("stopping", "working"):
        register_worker(worker_id, host="elsewhere", pid=1, supervisor_pid=None, now=now)
    sql(queue, "UPDATE worker SET stop_requested = ? WHERE id = ?", True, "stopping")
    assert claim(queue, "stopping") is None
    assert state_of(queue, "job") == "pending"
    assert claimed_id(queue, "working") == "job"


def test_an_outcome_and_the_next_claim_are_one_commit(queue, monkeypatch):
    for n, job_id in enumerate(("a", "b", "c")):
        enqueue(queue, job_id, priority=3 - n)
    register_worker("w", host="elsewhere", pid=1, supervisor_pid=None, now=queue.clock.now())
    first = queue.claim("w", LEASE_S)
    outcome = queue.finish_and_claim(first, "w", exit_code=0, error=None, next_lease=LEASE_S)
    assert (outcome.state, outcome.next.id, outcome.stop) == ("completed", "b", False)
    assert sql(queue, "SELECT claim_token FROM job WHERE id = ?", "b") == \
        [(outcome.next.claim_token,)]

    def claim_fails(*args: Any, **kw: Any) -> None:
        raise pw.OperationalError("the claim failed")

    with monkeypatch.context() as patched:
        patched.setattr(queue.backend, "claim", claim_fails)
        with pytest.raises(pw.OperationalError):
            queue.finish_and_claim(outcome.next, "w", exit_code=0, error=None,
                                   next_lease=LEASE_S)
    assert state_of(queue, "b") == "processing", "the outcome must fail with its claim"
    sql(queue, "UPDATE worker SET stop_requested = ? WHERE id = ?", True, "w")
    last = queue.finish_and_claim(outcome.next, "w", exit_code=0, error=None,
                                  next_lease=LEASE_S)
    assert (last.state, last.next, last.stop) == ("completed", None, True)
    assert [state_of(queue, job_id) for job_id in "abc"] == ["completed", "completed", "pending"]


def job_row(job_id: str, now: float) -> tuple:
    """A due pending job as a raw row in COLUMNS order."""
    values = dict(id=job_id, command="true", state="pending", attempts=0, max_retries=0,
                  priority=0, run_at=now, created_at=now, updated_at=now, queue="default")
    return tuple(values[name] for name in COLUMNS)


def staged_row(batch: str, job_id: str, now: float) -> tuple:
    return (batch, *job_row(job_id, now))


def test_publishing_a_staged_batch_moves_its_rows_in_order_a_slice_at_a_time(queue):
    now = queue.clock.now()
    mine, other = ["e", "c", "a", "d", "b"], ["x", "y"]
    with queue.db.atomic():
        queue.backend.insert_rows("staged_job", ("batch", *COLUMNS),
                                  [staged_row("mine", i, now) for i in mine]
                                  + [staged_row("other", i, now) for i in other])
    moved = []
    for _ in range(3):
        with queue.db.atomic():
            moved.append(queue.backend.publish_staged("mine", COLUMNS, 3, now))
    assert moved == [3, 2, 0]
    assert [row[0] for row in sql(queue, "SELECT id FROM job ORDER BY seq")] == mine
    events = sql(queue, "SELECT job_id, to_state FROM event ORDER BY job_id")
    assert events == [(i, "pending") for i in sorted(mine)]
    assert sorted(sql(queue, "SELECT batch, id FROM staged_job")) == [("other", "x"),
                                                                       ("other", "y")]
    assert [claimed_id(queue) for _ in mine] == mine


def test_a_commit_on_another_connection_wakes_a_listener_and_a_rollback_does_not(queue):
    listener = backend_for(queue.db)  # on this thread's connection
    listener.listen()

    def add_job(job_id: str, keep: bool) -> None:
        now = queue.clock.now()
        with queue.db.atomic() as transaction:
            queue.backend.insert_rows("job", COLUMNS, [job_row(job_id, now)])
            queue.backend.notify()
            if not keep:
                transaction.rollback()

    on_another_connection(queue, lambda: add_job("dropped", keep=False), write=False)
    assert not any(listener.wait_for_change(0.1, time.sleep) for _ in range(3))
    on_another_connection(queue, lambda: add_job("kept", keep=True), write=False)
    deadline = time.monotonic() + DEADLINE_S
    while not listener.wait_for_change(0.1, time.sleep):
        assert time.monotonic() < deadline, "the commit woke no listener"
    assert sql(queue, "SELECT id FROM job") == [("kept",)]


def test_rows_read_for_a_decision_cannot_change_until_it_commits(queue):
    enqueue(queue, "dependency")

    def cancel() -> int:
        return queue.db.execute_sql(
            f"UPDATE job SET state = 'cancelled' WHERE id = {queue.db.param}",
            ("dependency",)).rowcount

    with queue.db.atomic():
        read = sql(queue, f"SELECT state FROM job WHERE id = ?{queue.backend.share_rows}",
                   "dependency")
        meanwhile = on_another_connection(queue, cancel, write=True)
        assert sql(queue, "SELECT state FROM job WHERE id = ?", "dependency") == read
    assert isinstance(meanwhile, Busy), "the row changed under the transaction reading it"
    assert on_another_connection(queue, cancel, write=True) == 1
    assert state_of(queue, "dependency") == "cancelled"


def test_readers_never_wait_for_a_writer_and_see_only_what_it_committed(queue):
    enqueue(queue, "job")

    def priority() -> int:
        return sql(queue, "SELECT priority FROM job WHERE id = ?", "job")[0][0]

    with queue.db.atomic():
        sql(queue, "UPDATE job SET priority = 7 WHERE id = ?", "job")
        assert on_another_connection(queue, priority, write=False) == 0
    assert on_another_connection(queue, priority, write=False) == 7


def test_the_writers_lock_is_held_for_a_write_transaction_only(queue):
    if queue.backend.name != "sqlite":
        pytest.skip("PostgreSQL writers take row locks only (the claim and share checks)")
    fd = os.open(f"{queue.db.database}.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def free() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True

    try:
        with queue.db.atomic():
            sql(queue, "UPDATE job SET priority = 1")
            assert not free(), "a write transaction must hold the writers' lock"
        assert free(), "the writers' lock must go with the commit"
        sql(queue, "SELECT COUNT(*) FROM job")
        assert free(), "a read must not take the writers' lock"
    finally:
        os.close(fd)
