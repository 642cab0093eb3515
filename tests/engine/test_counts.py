"""Jobs per state from the stored count followed through the event log
(engine/counts.py): always equal to a full count, whatever moved, left or was
pruned meanwhile, and never a reason for a reader to wait for a writer."""

from __future__ import annotations

import random
import time

import pytest

from queuectl_tui.engine import counts
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.storage.models import Job
from tests.helpers import cli_json, run_cli
from tests.workers.test_pool_faults import hold_write_lock


def test_the_stored_count_followed_equals_a_full_count_through_every_kind_of_change(queue, clock):
    """Each step is read as a new process would: the stored count, followed.
    Retention prunes jobs that finished after the stored count was made (their
    events go with them), which must send the reader back to a full count."""
    queue.config_set("retention-completed", "10")
    queue.config_set("retention-dead", "10")
    rng = random.Random(3)
    assert queue.counts() == counts.count_states()
    if counts.followable(queue):  # PostgreSQL: every count is a full one
        assert counts.stored() is not None, "a full count is stored for the next reader"
    for step in range(80):
        action = rng.choice(["enqueue", "bulk", "run", "run", "cancel", "retry", "delete",
                             "prune", "purge"])
        if action == "enqueue":
            queue.enqueue(JobSpec(command="true", max_retries=rng.choice([0, 1])))
        elif action == "bulk":
            queue.enqueue_many([JobSpec(command="true") for _ in range(rng.randint(1, 30))])
        elif action == "run":
            for _ in range(rng.randint(1, 6)):
                claimed = queue.claim("w", 30)
                if claimed is not None:
                    queue.finish(claimed, "w", exit_code=rng.choice([0, 0, 1]), error=None)
        elif action == "cancel":
            waiting = [j.id for j in queue.jobs(state="pending", limit=2)]
            if waiting:
                queue.cancel(waiting)
        elif action == "retry":
            queue.retry_all_dead()
        elif action == "delete":
            done = [j.id for j in queue.jobs(state="completed", limit=3)]
            if done:
                queue.delete(done)
        elif action == "prune":
            queue.prune()
        else:
            queue.purge_dead()
        clock.advance(rng.choice([0.5, 3, 12]))
        if step % 9 == 0:
            counts.refresh_stored(queue)  # what the supervisor does every few seconds
        assert queue.counts() == counts.count_states(), (step, action)


def sqlite_only(queue) -> None:
    if not counts.followable(queue):
        pytest.skip("PostgreSQL's counts are full ones: nothing stored, nothing followed")


def test_a_count_older_than_the_newest_pruned_event_is_not_followed(queue, clock):
    sqlite_only(queue)
    queue.config_set("retention-completed", "5")
    base = counts.full(queue)
    job = queue.enqueue(JobSpec(command="true"))["id"]
    claimed = queue.claim("w", 30)
    queue.finish(claimed, "w", exit_code=0, error=None)  # finished after `base`
    clock.advance(10)
    pruned, _ = queue.prune()
    assert pruned.total == 1 and Job.get_or_none(Job.id == job) is None
    assert counts.follow(queue, base) is None, "its moves were deleted with it"
    assert queue.counts() == counts.count_states()


def test_an_unreadable_or_old_stored_count_is_made_again(queue, clock):
    sqlite_only(queue)
    queue.enqueue(JobSpec(command="true"))
    queue.counts()
    from queuectl_tui.engine.storage.models import Meta
    Meta.update(value="not json").where(Meta.key == counts.BASELINE_KEY).execute()
    assert queue.counts()["pending"] == 1
    assert counts.stored() is not None, "overwritten with a good one"
    made = counts.stored().counted_at
    clock.advance(counts.MAX_AGE_S + 1)
    queue.counts()
    assert counts.stored().counted_at > made


def test_status_does_not_wait_for_a_writer_to_store_its_count(db_path):
    """`status` after a change it has to count in full would store the count;
    with another process holding the write lock it answers at once, correctly,
    and leaves the storing to a later reader."""
    db = str(db_path)
    assert run_cli(db, "enqueue", "true").returncode == 0
    holder = hold_write_lock(db, 20)
    try:
        started = time.monotonic()
        status = cli_json(db, "status")
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(10)
    assert status["counts"]["pending"] == 1
    assert took < 5, f"status waited {took:.1f} s for the write lock"
