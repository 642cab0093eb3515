"""The DLQ's failure groups in the engine, on SQLite and PostgreSQL: a death
stores its signature, groups count them, a group id (or its start) picks
exactly its dead jobs for retry, delete and listing, and the v9 migration signs
jobs that died before signatures existed."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from queuectl_tui.engine import transitions
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.signatures import NONE, group_id
from queuectl_tui.engine.states import State
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.storage.opening import open_database
from queuectl_tui.engine.views import JobQuery, count_jobs, job_window
from queuectl_tui.errors import NotFound, UsageError
from queuectl_tui.workers.worker import Worker

MISSING = "exit 2: error: file <path> not found"
TIMEOUT = "exit 7: timeout after <n>ms connecting to <ip>"
KEYERROR = "exit 1: KeyError: <q>"


def die(queue: Queue, job_id: str, code: int, stderr: str, *, queue_name: str = "default",
        ended: str = "exit", error: str | None = None) -> None:
    """Enqueue a job with no retries, claim it and record a failed run."""
    queue.enqueue(JobSpec(command="false", id=job_id, max_retries=0, queue=queue_name,
                          no_retry_on="timeout"))
    claimed = queue.claim("w1", 30)
    assert claimed is not None and claimed.id == job_id
    state = queue.finish(claimed, "w1", exit_code=code, error=error or f"exit code {code}",
                         stderr_tail=stderr, ended=ended)
    assert state == "dead"


def three_ways(queue: Queue, clock, n: int = 5) -> None:
    """n jobs each failing in three ways, with numbers, paths, addresses and ids
    that differ from job to job; the third way in queue `etl`."""
    for i in range(n):
        die(queue, f"miss-{i}", 2, f"reading\nerror: file /tmp/x{i}.txt not found\n")
        clock.advance(1)
        die(queue, f"slow-{i}", 7, f"timeout after {i * 100 + 5}ms connecting to 10.0.0.{i}\n")
        clock.advance(1)
        die(queue, f"key-{i}", 1, "Traceback (most recent call last):\n  File \"x.py\", "
            f"line {i}\nKeyError: 'job-{i}{i}-a{i}'\n", queue_name="etl")
        clock.advance(1)


def dead_ids(queue: Queue) -> set[str]:
    return {j.id for j in queue.jobs(state="dead")}


def test_a_death_stores_its_signature_and_a_success_none(queue):
    die(queue, "d", 2, "error: file /tmp/x1.txt not found\n")
    queue.enqueue(JobSpec(command="true", id="ok"))
    claimed = queue.claim("w1", 30)
    assert queue.finish(claimed, "w1", exit_code=0, error=None) == "completed"
    assert queue.get("d").failure_sig == MISSING
    assert queue.get("ok").failure_sig is None
    detail = queue.job_dict("d")
    assert (detail["failure_sig"], detail["failure_group"]) == (MISSING, group_id(MISSING))


def test_a_failure_with_retries_left_is_not_signed_until_it_dies(queue, clock):
    queue.enqueue(JobSpec(command="false", id="r", max_retries=1))
    claimed = queue.claim("w1", 30)
    assert queue.finish(claimed, "w1", exit_code=3, error="exit code 3",
                        stderr_tail="bad thing 1\n") == "failed"
    assert queue.get("r").failure_sig is None
    clock.advance(60)
    claimed = queue.claim("w1", 30)
    assert queue.finish(claimed, "w1", exit_code=3, error="exit code 3",
                        stderr_tail="bad thing 2\n") == "dead"
    assert queue.get("r").failure_sig == "exit 3: bad thing <n>"


def test_groups_count_first_last_sample_and_queues(queue, clock):
    start = clock.now()
    three_ways(queue, clock)
    groups = queue.dlq_groups()
    assert [(g.signature, g.count) for g in groups] == [(KEYERROR, 5), (TIMEOUT, 5), (MISSING, 5)]
    key = groups[0]
    assert key.group == group_id(KEYERROR) and key.queues == ("etl",)
    assert key.sample == "key-4"  # the newest
    assert key.first_seen == pytest.approx(start + 2) and key.last_seen == pytest.approx(start + 14)
    assert [g.signature for g in queue.dlq_groups("etl")] == [KEYERROR]
    assert queue.dlq_groups("default")[0].queues == ("default",)
    public = key.public()
    assert public["group"] == key.group and public["count"] == 5
    assert public["first_seen"].endswith("Z") and public["queues"] == ["etl"]


def test_retry_by_group_revives_only_its_dead_jobs(queue, clock):
    three_ways(queue, clock)
    moved = queue.retry_all_dead(group=group_id(TIMEOUT)[:5])  # the start of the id will do
    assert sorted(moved) == [f"slow-{i}" for i in range(5)]
    assert dead_ids(queue) == {f"miss-{i}" for i in range(5)} | {f"key-{i}" for i in range(5)}
    assert {j.state for j in queue.jobs() if j.id.startswith("slow-")} == {"pending"}
    assert [g.signature for g in queue.dlq_groups()] == [KEYERROR, MISSING]
    with pytest.raises(NotFound):  # the group is gone: nothing of it is dead
        queue.retry_all_dead(group=group_id(TIMEOUT))
    # a retried job dies again another way: its new signature replaces the old
    claimed = queue.claim("w1", 30)
    assert queue.finish(claimed, "w1", exit_code=5, error="exit code 5",
                        stderr_tail="disk full\n") == "dead"
    assert queue.get(claimed.id).failure_sig == "exit 5: disk full"


def test_retry_and_delete_by_group_and_queue(queue, clock):
    three_ways(queue, clock, n=3)
    die(queue, "etl-miss", 2, "error: file /srv/y.txt not found\n", queue_name="etl")
    moved = queue.retry_all_dead(queue="etl", group=group_id(MISSING))
    assert list(moved) == ["etl-miss"]
    deleted = queue.purge_dead(group=group_id(MISSING))
    assert sorted(deleted) == ["miss-0", "miss-1", "miss-2"]
    assert queue.dlq_group(group_id(KEYERROR)).count == 3
    assert queue.dlq_group(group_id(KEYERROR), "default").count == 0
    assert "miss-0" not in {j.id for j in queue.jobs()}
    assert {j.id for j in queue.jobs(state="dead")} == \
        {f"slow-{i}" for i in range(3)} | {f"key-{i}" for i in range(3)}


def test_list_and_the_console_filter_by_group(queue, clock):
    three_ways(queue, clock, n=3)
    gid = group_id(MISSING)
    assert [j.id for j in queue.jobs(state="dead", group=gid)] == ["miss-0", "miss-1", "miss-2"]
    now = clock.now()
    query = JobQuery(states=("dead",), groups=(gid[:3],))
    assert [r["id"] for r in job_window(query, None, 0, 10, now=now).rows] == \
        ["miss-2", "miss-1", "miss-0"]
    assert count_jobs(query, now=now) == 3
    assert count_jobs(JobQuery(groups=("00000000",)), now=now) == 0  # no group's id
    both = JobQuery(groups=(gid, group_id(TIMEOUT)))
    assert count_jobs(both, now=now) == 6
    queue.retry_all_dead(group=gid)  # retried: no longer the group's, in any view
    assert count_jobs(JobQuery(groups=(gid,)), now=now) == 0


def test_group_ids_as_typed(queue, clock):
    with pytest.raises(NotFound):
        queue.retry_all_dead(group="abc")  # the DLQ is empty
    for text in ("", "xyz", "123456789", "12 34"):
        with pytest.raises(UsageError):
            queue.retry_all_dead(group=text)
    for code in range(1, 18):  # 17 groups: two of them begin with the same hex digit
        die(queue, f"j{code}", code, "")
    ids = [g.group for g in queue.dlq_groups()]
    first = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    with pytest.raises(UsageError, match="ambiguous"):
        queue.retry_all_dead(group=first)
    assert len(dead_ids(queue)) == 17  # nothing moved
    assert list(queue.retry_all_dead(group=group_id("exit 3").upper())) == ["j3"]


def test_timeouts_rescues_and_unknown_paths_are_signed(queue, clock):
    die(queue, "t", -15, "step 3\n", ended="timeout", error="timed out after 30 s")
    assert queue.get("t").failure_sig == "timeout: timed out after <n> s"
    queue.enqueue(JobSpec(command="true", id="lost", max_retries=0))
    queue.claim("w-gone", 5)
    clock.advance(6)
    assert queue.rescue() == ["lost"]
    assert queue.get("lost").failure_sig == "rescued: worker <id> lost; lease expired"
    # a move to dead that does not say how (a path of the future) is signed from its fields
    queue.enqueue(JobSpec(command="true", id="other", max_retries=0))
    claimed = queue.claim("w1", 30)
    with queue.db.atomic():
        job = Job.get(Job.id == "other")
        assert transitions.move(queue.ctx, job, State.DEAD, token=claimed.claim_token,
                                last_error="gave up after 3 snoozes", exit_code=None)
    assert queue.get("other").failure_sig == "error: gave up after <n> snoozes"


def test_a_real_run_through_the_worker_loop_is_signed(queue):
    queue.enqueue(JobSpec(command="echo 'fetching 42 items' >&2; echo "
                          "'error: file /tmp/a1.txt not found' >&2; exit 2", id="real",
                          max_retries=0))
    Worker(queue, "w1").run(until_idle=True)
    assert queue.get("real").failure_sig == MISSING


def test_dead_jobs_from_before_v9_are_signed_by_the_migration(db, clock):
    opened = open_database(db)
    queue = Queue(opened, clock=clock, host="testhost")
    try:
        three_ways(queue, clock, n=4)
        die(queue, "t", -15, "", ended="timeout", error="timed out after 5 s")
        assert queue.get("t").last_error.endswith("(not retried: timeout is in no_retry_on)")
        before = {j.id: j.failure_sig for j in queue.jobs(state="dead")}
        Job.update(failure_sig=None).execute()  # as v8 left them
        opened.db.execute_sql("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    finally:
        opened.close()
    opened = open_database(db)  # migrates to v9
    try:
        after = {j.id: j.failure_sig for j in Job.select(Job.id, Job.failure_sig)}
        assert after == before and before["t"] == "timeout: timed out after <n> s"
    finally:
        opened.close()


def test_the_release_before_named_queues_migrates_with_its_dead_job_signed(db_path):
    """tests/fixtures/v3-release.db holds one dead job (`exit 3`, stderr `oops`)."""
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "v3-release.db", db_path)
    opened = open_database(str(db_path))
    try:
        assert [(g.signature, g.count) for g in Queue(opened).dlq_groups()] == \
            [("exit 3: oops", 1)]
    finally:
        opened.close()


def test_a_dead_job_without_a_signature_is_a_group_of_its_own(queue, clock):
    three_ways(queue, clock, n=2)
    Job.update(failure_sig=None).where(Job.id == "miss-0").execute()
    groups = {g.signature: g for g in queue.dlq_groups()}
    assert groups[NONE].count == 1 and groups[MISSING].count == 1
    assert groups[NONE].public()["signature"] is None
    assert list(queue.retry_all_dead(group=group_id(NONE))) == ["miss-0"]


def test_the_groups_are_read_from_the_index_alone(db_path, clock):
    opened = open_database(str(db_path))
    try:
        plan = " ".join(str(row) for row in opened.db.execute_sql(
            "EXPLAIN QUERY PLAN SELECT failure_sig, queue, COUNT(*), MIN(finished_at), "
            "MAX(finished_at), MAX(seq) FROM job WHERE state = 'dead' "
            "GROUP BY failure_sig, queue"))
        assert "COVERING INDEX job_dead_sig" in plan, plan
    finally:
        opened.close()
    with sqlite3.connect(db_path) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "job_dead_sig" in indexes
