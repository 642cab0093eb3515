"""Big bulk enqueues (engine/batches.py) on SQLite and PostgreSQL: rows with
generated ids stage outside `job`, publish whole and in the file's order, and a
generated id that some job already holds is renamed, never lost or doubled."""

from __future__ import annotations

import pytest

from queuectl_tui.engine import batches
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.storage.models import Batch, Event, Job, StagedJob

SLICE = 50


@pytest.fixture(autouse=True)
def small_slices(monkeypatch):
    monkeypatch.setattr(batches, "SLICE_ROWS", SLICE)


def specs(n: int) -> list[JobSpec]:
    return [JobSpec(command=f"echo {i}") for i in range(n)]


def published(queue) -> list[tuple[str, str]]:
    """(id, command) of every job, in claim-age order."""
    return [(j.id, j.command) for j in Job.select(Job.id, Job.command).order_by(Job.seq)]


def generated_ids(queue, monkeypatch, ids: list[str]) -> None:
    """Make the next bulk enqueue draw these ids first (then fresh ones)."""
    real, first = queue.ids.many, [ids]

    def many(count: int) -> list[str]:
        drawn = first.pop() if first else []
        return (drawn + real(count))[:count]

    monkeypatch.setattr(queue.ids, "many", many)


def test_generated_ids_stage_outside_job_and_publish_in_file_order(queue, monkeypatch):
    seen = []
    real_done = batches._Turns.done

    def looking(turns):
        seen.append((Job.select().count(), StagedJob.select().count()))
        real_done(turns)

    monkeypatch.setattr(batches._Turns, "done", looking)
    ids = queue.enqueue_many(specs(175))
    assert seen[:4] == [(0, 50), (0, 100), (0, 150), (0, 175)]  # staged: nothing in job
    assert published(queue) == [(job_id, f"echo {i}") for i, job_id in enumerate(ids)]
    assert len(set(ids)) == 175
    assert ids == sorted(ids)  # so job's id index takes the slices in key order
    assert queue.counts()["pending"] == 175
    assert Event.select().where(Event.to_state == "pending").count() == 175
    assert (StagedJob.select().count(), Batch.select().count()) == (0, 0)


def test_named_ids_still_stage_in_job_and_refuse_a_taken_one(queue):
    queue.enqueue(JobSpec(command="first", id="j7"))
    from queuectl_tui.errors import Conflict
    with pytest.raises(Conflict, match="j7"):
        queue.enqueue_many([JobSpec(command="x", id=f"j{i}") for i in range(120)])
    assert published(queue) == [("j7", "first")]
    ids = queue.enqueue_many([JobSpec(command="x", id=f"k{i}") for i in range(120)])
    assert ids == [f"k{i}" for i in range(120)] and queue.counts()["pending"] == 121
    assert (StagedJob.select().count(), Batch.select().count()) == (0, 0)


def test_a_generated_id_already_taken_is_renamed_at_the_seal(queue, monkeypatch):
    queue.enqueue(JobSpec(command="older", id="TAKEN00001"))
    generated_ids(queue, monkeypatch, ["AAAAAAAAA1", "TAKEN00001", "AAAAAAAAA2"])
    refused_at_publish = []  # the publish's own rename would hide a seal that missed it
    monkeypatch.setattr(batches, "_compose", lambda *args: refused_at_publish.append(args))
    ids = queue.enqueue_many(specs(120))
    assert refused_at_publish == []
    assert ids[0] == "AAAAAAAAA1" and ids[2] == "AAAAAAAAA2"
    assert ids[1] != "TAKEN00001" and len(set(ids)) == 120
    assert published(queue) == [("TAKEN00001", "older")] + [
        (job_id, f"echo {i}") for i, job_id in enumerate(ids)]


def test_a_generated_id_taken_after_the_seal_is_renamed_at_publish(queue, monkeypatch):
    """Another enqueue may take a staged id between the seal and the publish
    (a 50-bit draw matching, or a person typing it): both jobs survive."""
    real_publish = batches.publish

    def race(ctx, batch, **kwargs):
        [victim] = [s.id for s in StagedJob.select().order_by(StagedJob.seq).offset(60).limit(1)]
        queue.enqueue(JobSpec(command="the other job", id=victim))
        seen.append(victim)
        return real_publish(ctx, batch, **kwargs)

    seen: list[str] = []
    monkeypatch.setattr(batches, "publish", race)
    ids = queue.enqueue_many(specs(120))
    [victim] = seen
    assert victim not in ids and len(set(ids)) == 120
    jobs = dict(published(queue))
    assert jobs[victim] == "the other job"
    assert [jobs[job_id] for job_id in ids] == [f"echo {i}" for i in range(120)]
    assert queue.counts()["pending"] == 121 and StagedJob.select().count() == 0


def test_taken_ids_are_looked_for_outside_the_write_lock_and_a_race_after_is_renamed(
        queue, monkeypatch):
    """The look for taken ids reads an index entry per row (0.2-0.6 s at a
    million): it runs before the seal's transaction, holding no lock. An id
    another enqueue takes between the look and the seal is renamed at publish."""
    real_taken = batches._taken
    seen: list[tuple[bool, str]] = []

    def look_then_race(ctx, batch):
        found = real_taken(ctx, batch)
        if not seen:  # the look before the seal (the publish looks again, after the race)
            [victim] = [s.id for s in
                        StagedJob.select().order_by(StagedJob.seq).offset(60).limit(1)]
            seen.append((ctx.db.in_transaction(), victim))
            queue.enqueue(JobSpec(command="the other job", id=victim))
        return found

    monkeypatch.setattr(batches, "_taken", look_then_race)
    ids = queue.enqueue_many(specs(120))
    [(in_transaction, victim)] = seen
    assert not in_transaction
    assert victim not in ids and len(set(ids)) == 120
    jobs = dict(published(queue))
    assert jobs[victim] == "the other job"
    assert [jobs[job_id] for job_id in ids] == [f"echo {i}" for i in range(120)]


def test_generated_ids_that_repeat_within_a_file_are_made_distinct(queue, monkeypatch):
    generated_ids(queue, monkeypatch, ["SAMESAME01"] * 5)
    ids = queue.enqueue_many(specs(120))
    assert ids[0] == "SAMESAME01" and len(set(ids)) == 120
    assert queue.counts()["pending"] == 120


def test_a_sealed_generated_batch_is_published_by_recovery(queue, monkeypatch):
    """The writer dies after the seal, one slice out: recovery publishes the
    rest, each job once, in order."""
    real_publish = batches.publish

    def crash(ctx, batch, **kwargs):
        real_publish(ctx, batch, max_slices=1)
        raise KeyboardInterrupt

    monkeypatch.setattr(batches, "publish", crash)
    with pytest.raises(KeyboardInterrupt):
        queue.enqueue_many(specs(170))
    assert queue.counts()["pending"] == SLICE
    monkeypatch.setattr(batches, "publish", real_publish)
    for _ in range(10):
        queue.recover_batches()
    assert [command for _, command in published(queue)] == [f"echo {i}" for i in range(170)]
    assert (StagedJob.select().count(), Batch.select().count()) == (0, 0)
    assert Event.select().where(Event.to_state == "pending").count() == 170


def test_a_failure_before_the_seal_leaves_nothing(queue, monkeypatch):
    """A slice fails (a full disk, Ctrl+C) after others were staged: all go."""
    calls = []

    def full_disk(turns):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")

    monkeypatch.setattr(batches._Turns, "done", full_disk)
    with pytest.raises(OSError):
        queue.enqueue_many(specs(170))
    assert (Job.select().count(), StagedJob.select().count(), Batch.select().count()) == (0, 0, 0)


@pytest.mark.parametrize("named", [True, False])
def test_a_writer_whose_batch_was_cleared_cannot_seal_it(queue, monkeypatch, named):
    """Another process judged the writer gone (its lock looked free: a lost
    PostgreSQL connection) and cleared the batch after one slice: the writer
    must not seal and publish the slices it writes after that."""
    from queuectl_tui.errors import Conflict
    calls = []

    def cleared_after_the_first_slice(turns):
        calls.append(1)
        if len(calls) == 1:
            [batch] = Batch.select()
            batches.discard(queue.ctx, batch.id)

    monkeypatch.setattr(batches._Turns, "done", cleared_after_the_first_slice)
    jobs = [JobSpec(command="x", id=f"n{i}" if named else None) for i in range(170)]
    with pytest.raises(Conflict, match="cleared by another process"):
        queue.enqueue_many(jobs)
    assert (Job.select().count(), StagedJob.select().count(), Batch.select().count()) == (0, 0, 0)


def test_a_long_pause_once_per_second_of_holding_the_lock(queue, clock, monkeypatch):
    """Short pauses let queuectl's own writers in; a long one, once per second
    the lock was held, lets in a writer asleep in SQLite's busy handler."""
    pauses = []
    monkeypatch.setattr(clock, "sleep", pauses.append)
    real_start = batches._Turns.start

    def slow_slice(turns):
        real_start(turns)
        clock.advance(0.3)  # each slice holds the lock 0.3 s

    monkeypatch.setattr(batches._Turns, "start", slow_slice)
    queue.enqueue_many(specs(8 * SLICE))
    long = [i for i, s in enumerate(pauses) if s == batches.LONG_YIELD_S]
    assert long == [3, 7, 11, 15] and set(pauses) == {batches.YIELD_S, batches.LONG_YIELD_S}


def test_a_version_5_database_gets_the_staging_table_and_keeps_its_batch(db_path):
    """A release before schema v6 staged every bulk enqueue in `job`: a sealed
    batch it left half published is finished after the upgrade, and new bulk
    enqueues stage in the new table."""
    import sqlite3

    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    from queuectl_tui.engine.storage.schema import SCHEMA_VERSION
    open_database(str(db_path)).close()
    with sqlite3.connect(db_path) as conn:  # what v5 left: rows staged in job, sealed
        conn.execute("DROP TABLE staged_job")
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
        conn.execute("INSERT INTO batch (id, host, pid, created_at, sealed_at, rows) "
                     "VALUES ('old', 'h', 1, 1.0, 2.0, 3)")
        conn.executemany(
            "INSERT INTO job (id, command, state, attempts, max_retries, priority, run_at, "
            "created_at, updated_at, batch) VALUES (?, 'true', 'staged', 0, 3, 0, 1, 1, 1, 'old')",
            [("v5a",), ("v5b",), ("v5c",)])
    opened = open_database(str(db_path))
    try:
        queue = Queue(opened)
        queue.recover_batches()
        assert [(j.id, j.state) for j in queue.jobs()] == [
            ("v5a", "pending"), ("v5b", "pending"), ("v5c", "pending")]
        queue.enqueue_many(specs(120))
        assert queue.counts()["pending"] == 123
        assert opened.db.execute_sql("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
    finally:
        opened.close()
