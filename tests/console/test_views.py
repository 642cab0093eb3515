"""The console's read queries: keyset windows in every order, and the followed counts."""

from __future__ import annotations

import random

import pytest

from queuectl_tui.clock import Ids
from queuectl_tui.engine import views
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.storage.opening import open_database
from queuectl_tui.engine.views import END, START, EventQuery, JobQuery


@pytest.fixture
def q(tmp_path, clock):
    queue = Queue(open_database(str(tmp_path / "v.db")), clock=clock, ids=Ids(random.Random(4)))
    rng = random.Random(9)
    specs = [JobSpec(command=f"echo {i}", id=f"j{i:03d}", priority=rng.choice([0, 0, 1, 5]),
                     delay=rng.choice([0, 0, 30])) for i in range(120)]
    queue.enqueue_many(specs)
    yield queue
    queue.opened.close()


def every_row(query: JobQuery) -> list[str]:
    """The whole list in display order, the slow obvious way."""
    order = {"age": lambda r: -r["seq"],
             "run": lambda r: (-r["priority"], r["run_at"], r["seq"])}[query.sort]
    rows = [r for r in Job.select().dicts()
            if (not query.states or r["state"] in query.states)
            and (query.sort != "run" or r["state"] in views.WAITING)]
    rows.sort(key=order, reverse=not query.descending)
    return [r["id"] for r in rows]


@pytest.mark.parametrize("query", [JobQuery(), JobQuery(descending=False), JobQuery(sort="run"),
                                   JobQuery(sort="run", descending=False),
                                   JobQuery(states=("pending",), sort="run")])
def test_walking_windows_visits_every_row_once_in_order(q, query):
    expected = every_row(query)
    seen, anchor = [], START
    while True:
        window = views.job_window(query, anchor, before=3, after=7)
        page = window.rows[window.at:]
        if anchor is not START:  # the anchor row opens the page; before it, what came before
            assert page[0]["id"] == seen[-1]
            assert [r["id"] for r in window.rows[:window.at]] == seen[-1 - window.at:-1]
        seen.extend(r["id"] for r in page if r["id"] not in seen)
        if not window.more_after:
            break
        anchor = query.key_of(window.rows[-1])
    assert seen == expected


def test_end_anchor_gives_the_last_rows(q):
    window = views.job_window(JobQuery(sort="run"), END, before=4, after=0)
    assert [r["id"] for r in window.rows] == every_row(JobQuery(sort="run"))[-4:]
    assert window.more_before and not window.more_after


def test_run_order_lists_waiting_jobs_only(q, clock):
    claimed = q.claim("w", 30)
    q.finish(claimed, "w", exit_code=0, error=None)
    ids = [r["id"] for r in views.job_window(JobQuery(sort="run"), after=500).rows]
    assert claimed.id not in ids and len(ids) == 119
    none = views.job_window(JobQuery(sort="run", states=("completed",)), after=500).rows
    assert none == []


def test_events_window_newest_first(q):
    rows = views.event_window(EventQuery(job_ids=("j005",)), after=10).rows
    assert [r["to_state"] for r in rows] == ["pending"]
    everything = views.event_window(EventQuery(), after=500).rows
    assert [r["seq"] for r in everything] == sorted((r["seq"] for r in everything), reverse=True)


def test_followed_counts_match_a_full_count(q, clock):
    counter = views.StateCounts()
    assert counter.read(q, 0.0) == q.counts()
    rng = random.Random(1)
    for step in range(60):
        claimed = q.claim("w", 30)
        if claimed is not None:
            q.finish(claimed, "w", exit_code=1, error="boom" if rng.random() < 0.5 else None)
        if step % 7 == 0:
            q.retry_all_dead()
        if step % 11 == 0:
            dead = [r.id for r in q.jobs(state="dead", limit=2)]
            if dead:
                q.delete(dead)
        if step % 5 == 0:
            q.enqueue(JobSpec(command="true"))
        clock.advance(3)
        assert counter.read(q, 1.0) == q.counts()


def test_since_keeps_jobs_created_within_the_window_before_now(tmp_path, clock):
    queue = Queue(open_database(str(tmp_path / "s.db")), clock=clock, ids=Ids(random.Random(4)))
    queue.enqueue(JobSpec(command="echo old", id="old"))
    clock.advance(3600)
    queue.enqueue(JobSpec(command="echo edge", id="edge"))
    clock.advance(1800)
    queue.enqueue(JobSpec(command="echo new", id="new"))
    now = clock.now()
    hour = JobQuery(since=3600.0)
    assert [r["id"] for r in views.job_window(hour, now=now).rows] == ["new", "edge"]
    assert views.count_jobs(hour, now=now) == 2
    assert views.job_ids_matching(hour, now=now) == ["edge", "new"]
    assert views.job_ids_matching(hour, now=now + 1801) == ["new"]  # the window slides
    assert views.count_jobs(JobQuery(since=3600.0, states=("pending",)), now=now + 1801) == 1
    with pytest.raises(ValueError, match="needs the time"):
        views.count_jobs(hour)
    queue.opened.close()
