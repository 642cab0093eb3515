"""The engine in-process, with a fake clock: state machine, claim order, backoff, DLQ."""

from __future__ import annotations

import pytest

from queuectl_tui.engine import config
from queuectl_tui.engine.jobspec import JobSpec, from_mapping
from queuectl_tui.engine.storage.models import Event, Job
from queuectl_tui.engine.storage.models import Worker as WorkerRow
from queuectl_tui.errors import Conflict, NotFound, UsageError
from queuectl_tui.workers.worker import Worker


def states(queue) -> dict[str, str]:
    return {j.id: j.state for j in queue.jobs()}


def test_enqueue_uses_config_defaults_and_records_event(queue):
    config.set_value("max-retries", 5)
    config.set_value("job-timeout", 30)
    job = queue.enqueue(JobSpec(command="echo hi"))
    stored = queue.get(job["id"])
    assert (stored.max_retries, stored.timeout, stored.state, stored.attempts) == (5, 30, "pending", 0)
    assert len(job["id"]) == 10
    [event] = list(queue.history(job["id"]))
    assert (event["from"], event["to"]) == (None, "pending")


def test_config_change_does_not_touch_enqueued_jobs(queue):
    queue.enqueue(JobSpec(command="true", id="a"))
    config.set_value("max-retries", 9)
    assert queue.get("a").max_retries == 3


def test_claim_order_priority_then_run_at_then_age(queue, clock):
    now = clock.now()
    queue.enqueue_many([
        JobSpec(command="true", id="old-low"),
        JobSpec(command="true", id="high", priority=5),
        JobSpec(command="true", id="later", run_at=now - 1),
        JobSpec(command="true", id="young-low"),
        JobSpec(command="true", id="future", priority=99, delay=60),
    ])
    order = []
    while (c := queue.claim("w", 10)) is not None:
        order.append(c.id)
    # `later` has run_at in the past, so it is due before jobs enqueued now.
    assert order == ["high", "later", "old-low", "young-low"]
    clock.advance(61)
    assert queue.claim("w", 10).id == "future"


def test_backoff_2_4_8_then_dlq_through_the_worker_loop(queue, clock):
    """A real shell command that fails, run by the real worker loop, with a fake clock."""
    queue.enqueue(JobSpec(command="echo boom >&2; exit 3", id="f", max_retries=3))
    worker = Worker(queue, "w1")
    t0 = clock.now()
    runs = []
    for expected_delay in (2, 4, 8):
        assert worker.run(until_idle=True) == 1
        job = queue.get("f")
        assert job.state == "failed"
        assert job.run_at - clock.now() == pytest.approx(expected_delay)
        runs.append(job.attempts)
        clock.advance(expected_delay - 0.01)
        assert worker.run(until_idle=True) == 0, "retried before its backoff elapsed"
        clock.advance(0.01)
    assert worker.run(until_idle=True) == 1
    job = queue.get("f")
    assert (job.state, job.attempts, job.exit_code) == ("dead", 4, 3)
    assert job.last_error == "exit code 3: boom"
    assert job.stderr_tail == "boom\n"
    assert runs == [1, 2, 3]
    assert clock.now() - t0 == pytest.approx(14)
    moves = [(e["from"], e["to"]) for e in reversed(list(queue.history("f")))]
    assert moves == [(None, "pending")] + [("pending", "processing"), ("processing", "failed")] \
        + [("failed", "processing"), ("processing", "failed")] * 2 \
        + [("failed", "processing"), ("processing", "dead")]


def test_backoff_is_capped_by_backoff_max(queue, clock):
    config.set_value("backoff-base", 10)
    config.set_value("backoff-max", 50)
    queue.enqueue(JobSpec(command="exit 1", id="f", max_retries=5))
    worker = Worker(queue, "w1")
    for delay in (10, 50, 50):
        worker.run(until_idle=True)
        assert queue.get("f").run_at - clock.now() == pytest.approx(delay)
        clock.advance(delay)


def test_max_retries_zero_runs_once(queue):
    queue.enqueue(JobSpec(command="exit 1", id="once", max_retries=0))
    assert Worker(queue, "w").run(until_idle=True) == 1
    assert (queue.get("once").state, queue.get("once").attempts) == ("dead", 1)


def test_dlq_retry_resets_attempts_and_requires_dead(queue):
    queue.enqueue(JobSpec(command="exit 1", id="d", max_retries=0))
    queue.enqueue(JobSpec(command="true", id="p"))
    with pytest.raises(Conflict):
        queue.retry_dead(["d"])  # still pending
    Worker(queue, "w").run(until_idle=True)
    assert states(queue) == {"d": "dead", "p": "completed"}
    with pytest.raises(Conflict):
        queue.retry_dead(["d", "p"])  # all or nothing: p is not dead
    assert queue.get("d").state == "dead"
    with pytest.raises(NotFound):
        queue.retry_dead(["nope"])
    assert queue.retry_dead(["d"]) == ["d"]
    job = queue.get("d")
    assert (job.state, job.attempts) == ("pending", 0)


def test_stale_worker_cannot_overwrite_a_rescued_job(queue, clock):
    config.set_value("lease-seconds", 5)
    queue.enqueue(JobSpec(command="sleep 1", id="j"))
    stale = queue.claim("w-old", 5)
    clock.advance(6)
    assert queue.rescue() == ["j"]
    job = queue.get("j")
    assert (job.state, job.attempts) == ("pending", 1)
    fresh = queue.claim("w-new", 5)
    assert fresh.attempts == 2
    assert queue.finish(stale, "w-old", exit_code=0, error=None) is None
    assert not queue.extend_lease(stale, 5)
    assert queue.finish(fresh, "w-new", exit_code=0, error=None) == "completed"
    assert queue.get("j").worker_id == "w-new"


def test_rescue_counts_as_an_attempt(queue, clock):
    queue.enqueue(JobSpec(command="true", id="pill", max_retries=1))
    for _ in range(2):
        queue.claim("w", 5)
        clock.advance(6)
        queue.rescue()
    job = queue.get("pill")
    assert (job.state, job.attempts) == ("dead", 2)
    assert "lost" in job.last_error


def test_live_lease_is_not_rescued(queue, clock):
    queue.enqueue(JobSpec(command="true", id="j"))
    claimed = queue.claim("w", 5)
    clock.advance(4)
    assert queue.extend_lease(claimed, 5)
    clock.advance(4)
    assert queue.rescue() == []
    assert queue.get("j").state == "processing"


def test_completed_job_is_never_claimed_again(queue):
    queue.enqueue(JobSpec(command="true", id="j"))
    Worker(queue, "w").run(until_idle=True)
    assert queue.claim("w", 5) is None
    assert queue.get("j").state == "completed"


def test_cancel_and_delete(queue):
    queue.enqueue_many([JobSpec(command="true", id="a"), JobSpec(command="true", id="b")])
    assert queue.cancel(["a"]) == [("a", "cancelled")]
    assert queue.get("a").state == "cancelled"
    with pytest.raises(Conflict):
        queue.cancel(["a"])
    assert queue.retry_all_dead() == [], "a cancelled job is not in the DLQ"
    queue.claim("w", 5)  # takes b
    with pytest.raises(Conflict):
        queue.delete(["a", "b"])
    assert {j.id for j in queue.jobs()} == {"a", "b"}
    queue.delete(["a"])
    with pytest.raises(NotFound):
        queue.get("a")
    assert Event.select().where(Event.job_id == "a", Event.to_state == "deleted").count() == 1


def test_cancel_of_a_running_job_is_a_request_its_worker_reads(queue):
    queue.enqueue(JobSpec(command="sleep 60", id="r"))
    claimed = queue.claim("w", 5)
    assert queue.cancel(["r"], grace=3) == [("r", "stopping")]
    assert queue.get("r").state == "processing"
    lease = queue.extend_lease(claimed, 5)
    assert lease.held and lease.cancel_grace == 3
    assert queue.finish(claimed, "w", exit_code=-15, error="cancelled", ended="cancelled") \
        == "cancelled"
    assert [a["reason"] for a in queue.attempts("r")] == ["cancelled"]


def test_requeue_keeps_attempt_records_and_restarts_the_budget(queue):
    queue.enqueue(JobSpec(command="false", id="q", max_retries=0))
    first = queue.claim("w", 5)
    assert queue.finish(first, "w", exit_code=1, error="exit code 1") == "dead"
    with pytest.raises(Conflict):
        queue.cancel(["q"])  # dead: nothing to cancel
    assert queue.requeue(["q"]) == ["q"]
    job = queue.get("q")
    assert (job.state, job.attempts, job.runs) == ("pending", 0, 1)
    second = queue.claim("w", 5)
    assert (second.attempts, second.runs) == (1, 2)
    assert queue.finish(second, "w", exit_code=0, error=None) == "completed"
    assert [(a["number"], a["exit_code"]) for a in queue.attempts("q")] == [(1, 1), (2, 0)]
    queue.enqueue(JobSpec(command="true", id="waiting"))
    with pytest.raises(Conflict):
        queue.requeue(["q", "waiting"])  # not finished: all or nothing
    assert queue.get("q").state == "completed"


def test_duplicate_ids_refuse_the_whole_batch(queue):
    queue.enqueue(JobSpec(command="true", id="x"))
    with pytest.raises(Conflict, match="already exists"):
        queue.enqueue_many([JobSpec(command="true", id="new"), JobSpec(command="true", id="x")])
    with pytest.raises(UsageError, match="duplicate"):
        queue.enqueue_many([JobSpec(command="true", id="y"), JobSpec(command="true", id="y")])
    assert Job.select().count() == 1


@pytest.mark.parametrize("payload, message", [
    ([1], "must be a JSON object"),
    ({}, "missing field 'command'"),
    ({"command": ""}, "must not be empty"),
    ({"command": "   "}, "must not be empty"),
    ({"command": 5}, "command must be a string"),
    ({"command": "x", "max_retries": -1}, "between 0 and"),
    ({"command": "x", "max_retries": 1.5}, "whole number"),
    ({"command": "x", "max_retries": "3"}, "whole number"),
    ({"command": "x", "max_retries": True}, "whole number"),
    ({"command": "x", "priority": "high"}, "whole number"),
    ({"command": "x", "timeout": -1}, "between 0"),
    ({"command": "x", "delay": "soon"}, "number of seconds"),
    ({"command": "x", "run_at": "tomorrow"}, "ISO 8601"),
    ({"command": "x", "run_at": 1, "delay": 1}, "not both"),
    ({"command": "x", "id": "has space"}, "invalid job id"),
    ({"command": "x", "id": ""}, "invalid job id"),
    ({"command": "x", "colour": "red"}, "unknown field 'colour'"),
    ({"command": "a\x00b"}, "NUL"),
])
def test_bad_specs_are_refused_clearly(payload, message):
    with pytest.raises(UsageError, match=message):
        from_mapping(payload)


@pytest.mark.parametrize("key, value, message", [
    ("max-retries", "-1", "between"), ("max_retries", "two", "whole number"),
    ("backoff-base", "0.5", "between"), ("backoff-base", "nan", "plain digits"),
    ("lease-seconds", "1", "between"), ("poll-interval", "0", "between"),
    ("durability", "sometimes", "one of"), ("colour", "red", "unknown config key"),
])
def test_bad_config_is_refused_and_nothing_changes(queue, key, value, message):
    before = config.get_all()
    with pytest.raises(UsageError, match=message):
        queue.config_set(key, value)
    assert config.get_all() == before


def test_config_aliases_and_types(queue):
    assert queue.config_set("max_retries", "7") == 7
    assert queue.config_get("max-retries") == 7
    assert queue.config_set("backoff-base", "1.5") == 1.5
    assert queue.config_set("BACKOFF_MAX", "60") == 60
    assert queue.config_all()["backoff-max"] == 60


@pytest.mark.postgres
def test_leases_use_the_database_clock_across_skewed_hosts(db):
    """A host whose clock runs an hour fast must not rescue a live lease."""
    if not db.startswith("postgresql://"):
        pytest.skip("the database clock matters where hosts share a server")
    from queuectl_tui.clock import Clock, SyncedClock
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database

    class HourFast(Clock):
        def now(self) -> float:
            return super().now() + 3600

    opened = open_database(db)
    try:
        alpha = Queue(opened, host="alpha")  # default on PostgreSQL: the server's clock
        beta = Queue(opened, clock=SyncedClock(opened.backend.db_time, base=HourFast()),
                     host="beta")
        assert abs(beta.clock.now() - alpha.clock.now()) < 1.0
        alpha.enqueue(JobSpec(command="true", id="held"))
        assert alpha.claim("alpha-w", 30).id == "held"
        assert beta.rescue() == []
        # The same host trusting its own clock would have stolen the job:
        naive = Queue(opened, clock=HourFast(), host="beta")
        assert naive.rescue() == ["held"]
    finally:
        opened.close()


def test_outcome_and_next_claim_share_one_transaction(queue):
    from queuectl_tui.engine import registry
    queue.enqueue_many([JobSpec(command="true", id="a"), JobSpec(command="true", id="b"),
                        JobSpec(command="true", id="c")])
    registry.register("w", host="h", pid=1, supervisor_pid=None, now=queue.clock.now())
    first = queue.claim("w", 10)
    outcome = queue.finish_and_claim(first, "w", exit_code=0, error=None, next_lease=10)
    assert (outcome.state, outcome.next.id, outcome.stop) == ("completed", "b", False)
    row = WorkerRow.get_by_id("w")  # one write of the worker row: busy with the next job
    assert (row.state, row.job_id, row.jobs_done) == ("busy", "b", 1)
    # A stop request is read in that same commit: nothing more is claimed.
    queue.stop_workers(["w"])
    last = queue.finish_and_claim(outcome.next, "w", exit_code=0, error=None, next_lease=10)
    assert (last.state, last.next, last.stop) == ("completed", None, True)
    assert queue.get("c").state == "pending"
    row = WorkerRow.get_by_id("w")
    assert (row.state, row.job_id, row.jobs_done) == ("idle", None, 2)


def test_a_job_claimed_but_never_started_is_handed_back_uncounted(queue):
    queue.enqueue(JobSpec(command="true", id="h"))
    claimed = queue.claim("w", 10)
    assert queue.release(claimed, "w")
    job = queue.get("h")
    assert (job.state, job.attempts) == ("pending", 0)
    assert next(queue.history("h"))["note"].startswith("handed back")
    assert not queue.release(claimed, "w"), "a second release must change nothing"


def test_an_id_taken_concurrently_is_a_clear_refusal(queue, monkeypatch):
    """The race the pre-check cannot see: the unique index refuses, cleanly."""
    queue.enqueue(JobSpec(command="true", id="taken"))
    real_select = Job.select
    # The pre-check sees nothing, as if the other process inserted right after it.
    monkeypatch.setattr(Job, "select", lambda *a: real_select(*a).where(Job.seq < 0))
    with pytest.raises(Conflict, match="already exists"):
        queue.enqueue_many([JobSpec(command="true", id="fresh"),
                            JobSpec(command="true", id="taken")])
    monkeypatch.undo()
    assert [j.id for j in queue.jobs()] == ["taken"]


def test_only_workers_relax_durability_and_only_when_configured(db_path):
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database

    def synchronous(**kw) -> int:
        opened = open_database(str(db_path))
        try:
            Queue(opened, **kw)
            return opened.db.execute_sql("PRAGMA synchronous").fetchone()[0]
        finally:
            opened.close()

    FULL, NORMAL = 2, 1
    assert synchronous() == FULL  # enqueue, retry, config: always on disk when they return
    assert synchronous(worker=True) == NORMAL  # the default: durability normal
    opened = open_database(str(db_path))
    Queue(opened).config_set("durability", "full")
    opened.close()
    assert synchronous(worker=True) == FULL


def test_a_worker_keeps_its_durability_after_reconnecting(db_path):
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    opened = open_database(str(db_path))
    try:
        Queue(opened, worker=True)
        opened.db.close()  # what a worker does after database trouble
        assert opened.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        opened.close()


def test_rescue_kills_a_run_whose_process_group_was_never_recorded(queue, clock):
    """A worker killed in the first moments of a run records nothing; the marker
    in the job's environment still lets the rescuer find and kill the run."""
    import os
    import subprocess
    queue.enqueue(JobSpec(command="true", id="j"))
    claimed = queue.claim("w", 5)
    run = subprocess.Popen(["sleep", "618"], start_new_session=True,
                           env={**os.environ, "QUEUECTL_CLAIM": claimed.claim_token})
    try:
        assert queue.get("j").run_pid is None
        clock.advance(6)
        assert queue.rescue() == ["j"]
        assert run.wait(5) == -9
    finally:
        if run.poll() is None:
            run.kill()


def test_a_job_knows_its_id_and_attempt(queue):
    queue.enqueue(JobSpec(command='echo "$QUEUECTL_JOB_ID $QUEUECTL_ATTEMPT"', id="me"))
    Worker(queue, "w").run(until_idle=True)
    assert queue.get("me").stdout_tail == "me 1\n"
