"""Flow control at the claim (engine/flow.py, engine/rates.py), in-process with
an injected clock, on SQLite and PostgreSQL: rates, per-key limits, capacity,
and the reasons `show` gives. Real pools are in tests/workers/test_flow_pools.py."""

from __future__ import annotations

import pytest

from queuectl_tui.engine import Capacity, JobSpec, State, parse_rate
from queuectl_tui.errors import UsageError


def add(q, command="true", **fields):
    return q.enqueue(JobSpec(command=command, **fields))["id"]


def claim_all(queue, worker="w1"):
    """Every job the rules let this worker take now."""
    taken = []
    while (claimed := queue.claim(worker, 30.0)) is not None or queue.claim_again:
        if claimed is not None:
            taken.append(claimed)
    return taken


@pytest.mark.parametrize("text,expected", [
    ("100/1m", (100, 60.0)), ("5/1s", (5, 1.0)), ("5/s", (5, 1.0)), ("2/30s", (2, 30.0)),
    ("3/2h", (3, 7200.0)), ("1/0.5s", (1, 0.5)), ("none", None)])
def test_rates_parse(text, expected):
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "5", "x/1m", "5/1y", "0/1s", "5/0s", "5/8d", "-1/1s"])
def test_bad_rates_are_refused(text):
    with pytest.raises(UsageError):
        parse_rate(text)


def test_a_rate_allows_n_starts_in_any_window_and_reopens_as_the_oldest_leaves(queue, clock):
    queue.queue_set("api", rate_limit=3, rate_period=60.0)
    for _ in range(5):
        add(queue, queue="api")
    first = claim_all(queue)
    assert len(first) == 3
    assert queue.has_due_job() is False  # rate-closed: idle workers are not woken by it
    # it reopens when the first start leaves the window, not at a bucket's edge
    assert queue.next_run_at() == pytest.approx(clock.now() + 60.0)
    row = queue.queue_get("api")
    assert row["rate"]["used"] == 3 and row["rate"]["next_start_in"] == pytest.approx(60.0)
    for claimed in first:
        queue.finish(claimed, "w1", exit_code=0, error=None)
    clock.advance(59.9)
    assert claim_all(queue) == []  # finished or not, starts count for the whole window
    clock.advance(0.2)
    assert len(claim_all(queue)) == 2
    # the other two jobs were never touched: pending, no attempt counted meanwhile
    assert queue.counts()[State.PROCESSING] == 2


def test_a_rate_leaves_other_queues_flowing(queue):
    queue.queue_set("api", rate_limit=1, rate_period=60.0)
    add(queue, queue="api")
    add(queue, queue="api")
    add(queue, queue="default")
    add(queue, queue="default")
    taken = claim_all(queue)
    assert sorted(c.queue for c in taken) == ["api", "default", "default"]


def test_a_per_key_limit_holds_each_key_and_lets_others_flow(queue):
    queue.queue_set("crm", key_limit=2)
    for key in ["a"] * 4 + ["b"] * 3:
        add(queue, queue="crm", key=key)
    add(queue, queue="crm")  # no key: not limited per key
    taken = claim_all(queue)
    keys = sorted(str(c.key) for c in taken)
    assert keys == ["None", "a", "a", "b", "b"]
    a_job = next(c for c in taken if c.key == "a")
    queue.finish(a_job, "w1", exit_code=0, error=None)
    again = claim_all(queue)
    assert [c.key for c in again] == ["a"]  # one slot of a opened, b still full


def test_a_per_key_rate_closes_keys_not_the_queue(queue, clock):
    queue.queue_set("api", rate_limit=1, rate_period=10.0, rate_per_key=True)
    for key in ("a", "a", "b"):
        add(queue, queue="api", key=key)
    assert sorted(c.key for c in claim_all(queue)) == ["a", "b"]
    assert queue.next_run_at() == pytest.approx(clock.now() + 10.0)
    clock.advance(10.5)
    assert [c.key for c in claim_all(queue)] == ["a"]


def test_capacity_admits_only_what_fits_and_frees_it_when_a_job_ends(queue):
    queue.claim_for("host:1", Capacity(cpus=4.0, mem=8 << 30, gpus=()))
    big = add(queue, cpus=3.0, priority=5)
    second = add(queue, cpus=2.0, priority=4)  # does not fit beside the first
    small = add(queue, cpus=1.0, mem=1 << 30, priority=3)
    add(queue, mem=16 << 30, priority=2)  # more memory than the pool has: never
    plain = add(queue, priority=1)  # states nothing: needs nothing
    taken = claim_all(queue)
    assert [c.id for c in taken] == [big, small, plain]
    queue.finish(taken[0], "w1", exit_code=0, error=None)
    assert [c.id for c in claim_all(queue)] == [second]  # 3 cores free again: it fits
    assert queue.pools() == []  # no live worker rows here: pools are what workers report


def test_gpu_jobs_get_their_own_devices(queue):
    queue.claim_for("host:1", Capacity(cpus=8.0, mem=8 << 30, gpus=("0", "1")))
    ids = [add(queue, gpus=1) for _ in range(3)]
    two = claim_all(queue)
    assert sorted(c.devices for c in two) == ["0", "1"]
    assert queue.job_dict(two[0].id)["devices"] == [two[0].devices]
    queue.finish(two[1], "w1", exit_code=0, error=None)
    third = claim_all(queue)
    assert [c.id for c in third] == [ids[2]] and third[0].devices == two[1].devices


def test_another_pools_jobs_do_not_use_this_pools_capacity(queue):
    queue.claim_for("host:1", Capacity(cpus=2.0, mem=1 << 30))
    add(queue, cpus=2.0)
    add(queue, cpus=2.0)
    assert len(claim_all(queue)) == 1
    queue.claim_for("host:2", Capacity(cpus=2.0, mem=1 << 30))
    assert len(claim_all(queue, "w2")) == 1


def test_show_says_why_a_job_waits(queue, clock):
    from queuectl_tui.engine import register_worker
    register_worker("w-gpu", host="h", pid=1, supervisor_pid=9, now=clock.now(),
                    pool="h:9", capacity=Capacity(4.0, 8 << 30, ("0",)).to_json())
    job = add(queue, gpus=2)
    assert queue.why_waiting(queue.get(job)) == "needs 2 GPUs; the largest pool has 1"
    queue.queue_set("api", key_limit=1)
    queue.claim_for("h:9", None)
    add(queue, queue="api", key="c1")
    waiting = add(queue, queue="api", key="c1")
    claim_all(queue)
    assert queue.why_waiting(queue.get(waiting)) == "key c1 has 1 running, its limit in queue api"
    queue.queue_set("slow", rate_limit=1, rate_period=30.0)
    add(queue, queue="slow")
    held = add(queue, queue="slow")
    claim_all(queue)
    assert queue.why_waiting(queue.get(held)).startswith(
        "queue slow is at its rate (1/30s); the next start is allowed in 30.0s")


def test_rates_and_limits_are_cleared_by_none(queue):
    queue.queue_set("api", rate_limit=1, rate_period=60.0, key_limit=1)
    queue.queue_set("api", rate_limit=None, rate_period=None, key_limit=None)
    for _ in range(3):
        add(queue, queue="api", key="k")
    assert len(claim_all(queue)) == 3


def test_the_start_log_keeps_only_the_window(queue, clock):
    """Starts older than the period go as new ones come: a busy rate-limited
    queue's log stays as small as its window."""
    queue.queue_set("api", rate_limit=2, rate_period=1.0)
    for _ in range(6):
        add(queue, queue="api")
    for _ in range(3):
        for claimed in claim_all(queue):
            queue.finish(claimed, "w1", exit_code=0, error=None)
        clock.advance(1.01)
    rows = queue.db.execute_sql("SELECT key, at FROM queue_start ORDER BY at").fetchall()
    assert [key for key, _ in rows] == ["", ""] and rows[0][1] == rows[1][1]  # the last two


def test_a_key_at_its_rate_says_so(queue, clock):
    queue.queue_set("api", rate_limit=1, rate_period=20.0, rate_per_key=True)
    add(queue, queue="api", key="acme")
    later = add(queue, queue="api", key="acme")
    other = add(queue, queue="api", key="zeta")
    claim_all(queue)
    assert queue.why_waiting(queue.get(later)) == (
        "key acme is at its rate (1/20s per key); the next start is allowed in 20.0s")
    assert queue.get(other).state == State.PROCESSING


def test_claims_count_side_by_side_until_a_rule_is_near_its_limit(queue):
    """PostgreSQL: rules with room for a start by every live worker are counted
    under a shared lock; near a limit the claim leaves the queue out once
    (claim_again) and the next counts alone, until there is room again.
    SQLite's claims take turns anyway: always exact, never 'side by side'."""
    side = queue.backend.concurrent_claims
    queue.queue_set("api", rate_limit=1000, rate_period=60.0, key_limit=3)
    for key in ("a", "a", "a", "b"):
        add(queue, queue="api", key=key)
    first = queue.claim("w1", 30.0)
    assert first is not None and queue.ctx.side_by_side is side
    taken = [first] + claim_all(queue)
    assert sorted(c.key for c in taken) == ["a", "a", "a", "b"]
    # a's 3 running + this claimer leave no room: the claims now count alone
    assert queue.ctx.claim_alone is side
    for claimed in taken:
        queue.finish(claimed, "w1", exit_code=0, error=None)
    add(queue, queue="api", key="a")
    assert queue.claim("w1", 30.0) is not None  # counted alone: room again
    assert queue.ctx.claim_alone is False


def test_prepared_rule_reads_are_made_again_after_a_reconnect(queue):
    """PostgreSQL prepares the rules' read and the gated claim once per
    connection: a connection lost (a server restart, a terminated backend) and
    made again prepares them again rather than EXECUTE a name it no longer has."""
    if not queue.backend.concurrent_claims:
        pytest.skip("PostgreSQL only: SQLite runs these statements as they are")
    import psycopg2
    from queuectl_tui.engine import StorageError
    queue.queue_set("api", rate_limit=100, rate_period=60.0, key_limit=5)
    for key in ("a", "b", "c"):
        add(queue, queue="api", key=key)
    assert queue.claim("w1", 30.0) is not None
    pid = queue.db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    admin = psycopg2.connect(queue.opened.target)
    admin.autocommit = True
    admin.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    with pytest.raises(StorageError):
        queue.claim("w1", 30.0)
    queue.db.close()
    assert queue.claim("w1", 30.0) is not None  # a new connection: prepared again
    assert queue.claim("w1", 30.0) is not None
