"""Queue.needed_by: the jobs enqueued --after one, whatever state they are in
now (the console's `A` jumps to them). SQLite and PostgreSQL."""

from __future__ import annotations

from queuectl_tui.engine.jobspec import JobSpec
from tests.engine.test_dependencies_keys_retries_hooks import run_one


def test_needed_by_lists_every_dependent_in_order_with_its_state(queue):
    queue.enqueue(JobSpec(command="true", id="root"))
    queue.enqueue(JobSpec(command="true", id="b", after=("root",)))
    queue.enqueue(JobSpec(command="true", id="a", after=("root",)))
    queue.enqueue(JobSpec(command="true", id="other"))
    assert queue.needed_by("root") == [{"id": "b", "state": "blocked"},
                                       {"id": "a", "state": "blocked"}]
    assert queue.needed_by("other") == []
    assert run_one(queue) == "root"  # released: still listed, now pending
    assert queue.needed_by("root") == [{"id": "b", "state": "pending"},
                                       {"id": "a", "state": "pending"}]
    queue.delete(["a"])  # a deleted dependent is no longer named
    assert queue.needed_by("root") == [{"id": "b", "state": "pending"}]
