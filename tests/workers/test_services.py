"""A turn of each of the pool's background services (workers/services/), on a
real database, with the queue's fake clock driving the services' intervals:
nothing waits for time to pass except the finish hooks' own threads, which
are polled with a deadline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from queuectl_tui.clock import FakeClock
from queuectl_tui.engine import JobSpec, Queue, add_schedule, hooks_waiting
from queuectl_tui.errors import NotFound
from queuectl_tui.workers.pool_log import PoolLog
from queuectl_tui.workers.services import checkpoint, counts, pruner, unblocker
from queuectl_tui.workers.services.base import Service
from queuectl_tui.workers.services.checkpoint import Checkpointer
from queuectl_tui.workers.services.counts import CountsRefresher
from queuectl_tui.workers.services.hooks import HookRunner
from queuectl_tui.workers.services.pruner import Pruner
from queuectl_tui.workers.services.rescue import Rescuer
from queuectl_tui.workers.services.scheduler import Scheduler
from queuectl_tui.workers.services.unblocker import Unblocker
from queuectl_tui.workers.supervisor import Supervisor
from tests.helpers import wait_for


@pytest.fixture
def pool_log(tmp_path: Path):
    """The pool's log, written to a file the test reads back: (PoolLog, path)."""
    path = tmp_path / "pool.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    yield PoolLog(fd=fd, stamp=False), path
    os.close(fd)


def said(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def finish_one(queue: Queue, job_id: str) -> None:
    queue.enqueue(JobSpec(command="true", id=job_id))
    claimed = queue.claim("w", 30)
    assert claimed is not None and claimed.id == job_id
    queue.finish(claimed, "w", exit_code=0, error=None)


def gone(queue: Queue, job_id: str) -> bool:
    try:
        queue.get(job_id)
    except NotFound:
        return True
    return False


def test_the_pool_turns_every_service_in_one_order(queue):
    """One shape for every duty: the supervisor holds them in the order it
    turns them, and only some keep turning while the pool stops."""
    services = Supervisor(queue, "unused", 1).services
    assert all(isinstance(service, Service) for service in services)
    assert [s.name for s in services] == ["rescue", "checkpoint", "counts", "hooks",
                                         "scheduler", "pruner", "unblocker"]
    assert [s.name for s in services if s.while_stopping] == ["rescue", "checkpoint",
                                                               "counts", "hooks"]


def test_a_service_turns_only_when_its_interval_has_passed(queue, clock: FakeClock, pool_log):
    """The pruner's first round waits for the workers to start, the next for
    its interval; a stopping pool does not prune at all."""
    queue.config_set("retention-completed", 1)
    finish_one(queue, "old")
    clock.advance(10)
    events, log = pool_log
    service = Pruner(queue, events, clock.monotonic)
    service.turn()
    assert not gone(queue, "old") and said(log) == []  # not yet: workers start first
    clock.advance(pruner.FIRST_S)
    service.turn(stopping=1)
    assert not gone(queue, "old")  # the pool is stopping: no pruning
    service.turn()
    assert gone(queue, "old")
    assert said(log) == ["pruned 1 job (completed 1) past their retention"]
    finish_one(queue, "newer")
    clock.advance(pruner.EVERY_S / 2)
    service.turn()
    assert not gone(queue, "newer")  # within its interval
    clock.advance(pruner.EVERY_S / 2)
    service.turn()
    assert gone(queue, "newer")


def test_database_trouble_in_a_round_is_survived_and_said_once_by_the_rescuer(queue, pool_log):
    """A dead worker's job is taken back at once; while the database fails,
    the rescuer keeps the worker pending, says so once, drops the connection
    and tries again on each turn; then it says the database is back."""
    finish_one(queue, "done")
    queue.enqueue(JobSpec(command="sleep 60", id="held"))
    assert queue.claim("dead-worker", 600) is not None
    events, log = pool_log
    rescuer = Rescuer(queue, events)
    rescuer.add("dead-worker", True)
    queue.db.execute_sql("ALTER TABLE job RENAME TO job_away")
    try:
        rescuer.turn(stopping=1)
        rescuer.turn(stopping=1)
        assert queue.db.is_closed()
    finally:
        queue.db.execute_sql("ALTER TABLE job_away RENAME TO job")
    assert rescuer.pending == [("dead-worker", True)]
    trouble = [line for line in said(log) if line.startswith("database trouble")]
    assert len(trouble) == 1 and trouble[0].endswith("the pool keeps running and retries")
    rescuer.turn(stopping=1)
    assert rescuer.pending == []
    assert queue.get("held").state == "pending"
    assert said(log)[-2] == "database reachable again"
    assert "rescued by supervisor" in said(log)[-1]


@pytest.mark.parametrize("service, hidden", [
    (Scheduler, "schedule"), (Pruner, "job"), (Unblocker, "job"), (CountsRefresher, "job")])
def test_the_other_services_survive_database_trouble_in_silence(queue, clock: FakeClock,
                                                                 pool_log, service, hidden):
    """The same trouble in any other round only means later: no error leaves
    the turn and nothing is said (the rescuer's line is the pool's one)."""
    add_schedule(queue, "nightly", "0 3 * * *", "echo night")
    queue.config_set("retention-completed", 1)
    finish_one(queue, "old")
    events, log = pool_log
    turned = service(queue, events, clock.monotonic)
    clock.advance(86400)
    queue.db.execute_sql(f"ALTER TABLE {hidden} RENAME TO hidden_away")
    try:
        turned.turn()
        dropped = queue.db.is_closed()  # the next use opens a fresh connection
    finally:
        queue.db.execute_sql(f"ALTER TABLE hidden_away RENAME TO {hidden}")
    assert said(log) == []
    assert dropped or (service is CountsRefresher and queue.backend.name != "sqlite")
    clock.advance(turned.every)
    turned.turn()  # and the next round goes on as if nothing had happened


def test_the_scheduler_enqueues_a_due_tick_on_its_turn(queue, clock: FakeClock, pool_log):
    add_schedule(queue, "nightly", "0 3 * * *", "echo night")
    events, log = pool_log
    service = Scheduler(queue, events, clock.monotonic)
    service.turn()
    assert said(log) == []
    clock.advance(86400)
    service.turn()
    assert len(said(log)) == 1 and said(log)[0].startswith("schedule nightly: enqueued ")
    assert "missed" not in said(log)[0]
    assert [j.command for j in queue.jobs(state="pending")] == ["echo night"]


def test_the_unblocker_releases_a_job_nothing_will_release(queue, clock: FakeClock, pool_log):
    queue.enqueue(JobSpec(command="true", id="A", delay=3600))
    queue.enqueue(JobSpec(command="true", id="B", after=("A",)))
    queue.db.execute_sql("UPDATE job SET state = 'completed' WHERE id = 'A'")
    events, log = pool_log
    service = Unblocker(queue, events, clock.monotonic)
    clock.advance(unblocker.FIRST_S)
    service.turn(stopping=1)
    assert queue.get("B").state == "blocked"  # a stopping pool leaves it
    service.turn()
    assert queue.get("B").state == "pending"
    assert said(log) == ["job B was blocked with nothing left to wait for: pending now"]


def test_the_counts_refresh_stores_the_count_every_interval(queue, clock: FakeClock, pool_log):
    from queuectl_tui.engine.counts import stored
    if queue.backend.name != "sqlite":
        pytest.skip("PostgreSQL counts in full every time: nothing is stored")
    service = CountsRefresher(queue, pool_log[0], clock.monotonic)
    queue.enqueue(JobSpec(command="true", id="one"))
    service.turn()
    assert stored().counts["pending"] == 1
    queue.enqueue(JobSpec(command="true", id="two"))
    service.turn(stopping=1)
    assert stored().counts["pending"] == 1  # within its interval
    clock.advance(counts.COUNTS_EVERY_S)
    service.turn(stopping=1)  # it keeps counting while the pool stops
    assert stored().counts["pending"] == 2


def test_the_checkpointer_folds_the_wal_back_every_interval(queue, clock: FakeClock, db,
                                                            pool_log):
    if queue.backend.name != "sqlite":
        pytest.skip("only SQLite has a WAL to fold back")
    queue.backend.leave_checkpoints()
    service = Checkpointer(queue, pool_log[0], clock.monotonic)
    service.turn()
    size = os.path.getsize(db)
    queue.enqueue_many([JobSpec(command="echo " + "x" * 2000) for _ in range(50)])
    assert os.path.getsize(db) == size  # in the WAL only
    service.turn()
    assert os.path.getsize(db) == size  # within its interval
    clock.advance(checkpoint.CHECKPOINT_EVERY_S)
    service.turn(stopping=2)  # it folds back while the pool stops too
    assert os.path.getsize(db) > size


def test_finish_hooks_run_on_their_own_thread_and_stop_now_hands_them_back(queue, tmp_path,
                                                                           pool_log):
    """`start` runs hooks from its own threads; a turn with stop now (second
    Ctrl+C) stops a running hook, which goes back to the outbox untried (the
    graceful stop is tests/test_hooks.py's)."""
    started = tmp_path / "started"
    queue.config_set("finish-hook", f"echo $QUEUECTL_JOB_ID > {started}; sleep 60")
    finish_one(queue, "hooked")
    events, log = pool_log
    runner = HookRunner(queue, events)
    runner.start()
    try:
        wait_for(started.exists, 30, message="the hook to start")
        assert not hooks_waiting(queue.db, queue.clock.now())  # taken
        runner.turn(stopping=2)
        wait_for(lambda: any("stopped with the pool" in line for line in said(log)), 30,
                 message="the hook to be stopped")
    finally:
        runner.stop()
    assert started.read_text().strip() == "hooked"
    assert hooks_waiting(queue.db, queue.clock.now())  # handed back for the next pool
