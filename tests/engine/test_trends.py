"""engine/trends.py: runs and failures per bucket and duration percentiles per
queue, read on fixed data with a fake clock (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from queuectl_tui.clock import FakeClock
from queuectl_tui.engine import trends
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue


def run(queue: Queue, clock: FakeClock, name: str, *, took: float, ok: bool = True,
        retries: int = 0) -> str:
    """Enqueue one job in queue `name`, run it for `took` seconds, finish it."""
    job = queue.enqueue(JobSpec(command="true", queue=name, max_retries=retries))
    claimed = queue.claim("w1", 30)
    assert claimed is not None and claimed.id == job["id"]
    started = clock.now()
    clock.advance(took)
    return queue.finish_and_claim(claimed, "w1", exit_code=0 if ok else 1,
                                  error=None if ok else "exit code 1",
                                  started_at=started).state


def test_counts_per_bucket_and_percentiles_per_queue(queue: Queue, clock: FakeClock) -> None:
    t0 = clock.now()
    run(queue, clock, "mail", took=5.0)  # ended t0+5: before the span read below
    clock.advance(55)  # t0+60: the span starts here
    clock.advance(30)
    run(queue, clock, "mail", took=1.0)  # ends at +31 into the span: bucket 0
    clock.advance(58.5)
    run(queue, clock, "mail", took=2.0)  # ends +91.5: bucket 1 (1.525 buckets: floors to 1)
    run(queue, clock, "mail", took=10.0, ok=False)  # +101.5: dead, bucket 1
    clock.advance(600)
    run(queue, clock, "reports", took=0.25)  # +701.75: bucket 11
    assert run(queue, clock, "reports", took=0.5, ok=False, retries=1) == "failed"
    now = t0 + 60 + 3600
    clock.advance(now - clock.now())
    retry = queue.claim("w1", 30)  # the failed job's retry, which ends after `now`
    assert retry is not None and retry.prev_state == "failed"
    clock.advance(3.0)
    assert queue.finish_and_claim(retry, "w1", exit_code=0, error=None,
                                  started_at=now).state == "completed"

    found = trends.read(queue.db, now, "1h")

    assert (found.span, found.start, found.bucket_s, found.buckets) == ("1h", t0 + 60, 60.0, 60)
    by_name = {t.name: t for t in found.queues}
    assert list(by_name) == ["default", "mail", "reports"]  # every named queue
    assert by_name["default"].done == by_name["default"].runs == 0
    mail, reports = by_name["mail"], by_name["reports"]
    assert mail.completed[:2] == [1, 1] and sum(mail.completed) == 2
    assert mail.failed[1] == 1 and mail.failures == 1
    assert reports.completed[11] == 1 and reports.failed[11] == 1
    assert (reports.done, reports.failures) == (1, 1)
    # Durations of the runs that ended in the span: mail 1, 2, 10 s; reports 0.25, 0.5 s.
    assert (mail.runs, mail.p50, mail.p95) == (3, 2.0, 10.0)
    assert (reports.runs, reports.p50, reports.p95) == (2, 0.25, 0.5)
    assert found.total is not None
    assert (found.total.done, found.total.failures, found.total.runs) == (3, 2, 5)
    assert (found.total.p50, found.total.p95) == (1.0, 10.0)
    assert found.capped_from is None and not found.durations_capped


def test_each_span_has_its_buckets_and_nothing_is_an_empty_span(queue: Queue,
                                                                clock: FakeClock) -> None:
    run(queue, clock, "default", took=1.0)
    now = clock.now()
    for span, buckets in (("5m", 30), ("1h", 60), ("24h", 48)):
        found = trends.read(queue.db, now, span)
        assert found.buckets == buckets
        assert [t.name for t in found.queues] == ["default"]
        assert found.queues[0].completed[-1] == 1
    later = trends.read(queue.db, now + 86400 + 1, "24h")
    assert [(t.name, t.done, t.failures, t.runs, t.p50) for t in later.queues] == \
        [("default", 0, 0, 0, None)]  # a named queue with no run in the span is listed
    assert later.total is not None and later.total.done == 0 and later.total.p50 is None
    with pytest.raises(ValueError, match="unknown span"):
        trends.read(queue.db, now, "2h")


def test_caps_bound_the_rows_read_and_say_so(queue: Queue, clock: FakeClock) -> None:
    ended = []
    for _ in range(5):
        run(queue, clock, "default", took=1.0)
        ended.append(clock.now())
        clock.advance(10)
    now = clock.now()

    found = trends.read(queue.db, now, "1h", max_events=3, max_attempts=2)

    assert found.total is not None and found.total.done == 3  # the newest three only
    assert found.capped_from == ended[2]
    assert found.total.runs == 2 and found.durations_capped
    whole = trends.read(queue.db, now, "1h")
    assert whole.total is not None and whole.total.done == 5
    assert whole.capped_from is None and not whole.durations_capped


def test_runs_of_deleted_jobs_are_left_out_but_count_towards_the_cap(queue: Queue,
                                                                      clock: FakeClock) -> None:
    ids = []
    for _ in range(3):
        job = queue.enqueue(JobSpec(command="true", queue="mail", max_retries=0))
        ids.append(job["id"])
        claimed = queue.claim("w1", 30)
        assert claimed is not None
        clock.advance(1.0)
        queue.finish_and_claim(claimed, "w1", exit_code=0, error=None,
                               started_at=clock.now() - 1.0)
    assert queue.delete([ids[0]]) == [ids[0]]
    now = clock.now()
    found = trends.read(queue.db, now, "5m")
    assert found.total is not None and (found.total.done, found.total.runs) == (2, 2)
    capped = trends.read(queue.db, now, "5m", max_events=3)
    assert capped.total is not None and capped.total.done == 2
    assert capped.capped_from is not None
