"""A fixed queue for console tests: built through the engine with a fake clock.

Every test gets the same database (same ids, same times), so snapshots are
stable; the app gets the same clock, no refresh timer, and (for snapshots)
database calls inline, so a picture never races a refresh.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import re
from pathlib import Path

import pytest

from queuectl_tui.clock import FakeClock, Ids
from queuectl_tui.console.app import ConsoleApp
from queuectl_tui.console.pilot import press_and_settle, settle
from queuectl_tui.engine import logs, registry
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database

START = 1_800_000_000.0
HOST = "fixture-host"  # not this machine: stopping a fixture worker signals no process
W1, W2, W3 = "fixture-w1", "fixture-w2", "fixture-w3"


def _run(q: Queue, clock: FakeClock, worker: str, *, error: str | None = None,
         took: float = 1.5, out: str = "") -> str:
    claimed = q.claim(worker, 30)
    assert claimed is not None
    clock.advance(took)
    return q.finish(claimed, worker, exit_code=exit_code_of(error), error=error,
                    stdout_tail=out, stderr_tail=error or "",
                    ended="timeout" if error and "timed out" in error else "exit")


def exit_code_of(error: str | None) -> int:
    """The exit code a real run with this error would have recorded, so the
    pictures agree with themselves (EXIT beside "exit code N")."""
    if error is None:
        return 0
    found = re.match(r"exit code (\d+)", error)
    if found:
        return int(found.group(1))
    return -15 if "timed out" in error else 1


def build_queue(path: Path, clock: FakeClock) -> dict[str, str]:
    """Jobs in every state and five queues (one paused, one limited), three
    workers (one busy, one idle, one gone), events."""
    q = Queue(open_database(str(path)), clock=clock, ids=Ids(random.Random(1234)))
    for w in (W1, W2, W3):
        registry.register(w, host=HOST, pid=4000 + int(w[-1]), supervisor_pid=None,
                          now=clock.now())
    done = q.enqueue_many([JobSpec(command=f"echo 'report {i}' && gzip -c data/{i}.csv",
                                   id=f"report-{i:02d}", queue="reports")
                           for i in range(1, 9)])
    for _ in done:
        _run(q, clock, W1, out="report ok\n")
        clock.advance(4)
    q.enqueue_many([
        JobSpec(command="curl -fsS https://example.invalid/hook", id="hook-1", max_retries=0,
                queue="hooks"),
        JobSpec(command="curl -fsS https://example.invalid/hook?x=2", id="hook-2",
                max_retries=0, queue="hooks"),
        JobSpec(command="pg_dump app > /backups/app.sql", id="backup-db", max_retries=0),
    ])
    for err in ("exit code 6: curl: (6) Could not resolve host: example.invalid",
                "exit code 6: curl: (6) Could not resolve host: example.invalid",
                "timed out after 2s"):
        _run(q, clock, W2, error=err)
        clock.advance(3)
    q.enqueue(JobSpec(command="./flaky-sync.sh --full", id="flaky-sync", max_retries=3))
    _run(q, clock, W2, error="exit code 3: sync interrupted")
    q.enqueue(JobSpec(command="for i in $(seq 1 50); do echo step $i; sleep 1; done",
                      id="long-build", priority=5))
    running = q.claim(W1, 30)
    assert running is not None
    fd = logs.open_for_append(q.opened.log_dir, running.seq)
    os.write(fd, b"".join(f"step {i}\n".encode() for i in range(1, 13)))
    os.close(fd)
    registry.beat(W1, state="busy", now=clock.now(), job_id=running.id,
                  job_started_at=clock.now())
    q.enqueue_many([
        JobSpec(command="python manage.py send_digest", id="digest", priority=1, queue="mail"),
        JobSpec(command="echo 'nightly cleanup'", id="cleanup", delay=3600),
        JobSpec(command="rsync -a /srv/media backup:/media", id="media-sync", queue="media"),
    ])
    q.queue_set("media", paused=True)
    q.queue_set("hooks", max_running=2)
    clock.advance(12)
    registry.beat(W1, state="busy", now=clock.now(), job_id=running.id,
                  job_started_at=clock.now() - 12)
    registry.beat(W2, state="idle", now=clock.now() - 2)
    ids = {"running": running.id}
    q.opened.close()
    return ids


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def queue_db(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fixture database, named by a relative path so pictures do not show tmp_path."""
    monkeypatch.chdir(tmp_path)
    build_queue(tmp_path / "queue.db", clock)
    return "queue.db"


def make_app(db: str, clock: FakeClock, *, threaded: bool = False) -> ConsoleApp:
    return ConsoleApp(db, clock=clock, ids=Ids(random.Random(99)), refresh_interval=None,
                      threaded=threaded, steady=True)


def keys_then_settle(*keys: str):
    """A run_before for snap_compare: settle, press each key and settle after it."""
    async def run_before(pilot) -> None:
        await settle(pilot)
        await press_and_settle(pilot, *keys)
    return run_before


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run `async def` tests here with asyncio (no async plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        kwargs = {name: pyfuncitem.funcargs[name] for name in names}
        asyncio.run(pyfuncitem.obj(**kwargs))
        return True
    return None


def add_schedules(path: Path, clock: FakeClock) -> None:
    """Four schedules on top of the fixture queue (a separate fixture: the jobs
    they make would change every other picture): one whose last job completed,
    one whose last job died, one paused that never ran, one just fired."""
    from queuectl_tui.engine import schedules
    q = Queue(open_database(str(path)), clock=clock, ids=Ids(random.Random(77)))
    schedules.add(q, "heartbeat", "*/5 * * * *", "curl -fsS https://example.invalid/ping",
                  priority=10, max_retries=0)
    schedules.add(q, "nightly-backup", "30 2 * * *", "pg_dump app > /backups/app.sql",
                  tz="Europe/Berlin", queue_name="backups", priority=10, max_retries=0)
    schedules.add(q, "weekday-report", "0 9 * * MON-FRI", "./report.sh --mail",
                  tz="America/New_York")
    schedules.set_paused(q, "weekday-report", True)
    schedules.add(q, "sync", "@hourly", "rsync -a /srv/in/ /srv/out/", catch_up=True)
    clock.advance(301)  # heartbeat's first tick comes due
    schedules.fire_due(q)
    _run(q, clock, W2, out="pong\n", took=0.4)
    schedules.run_now(q, "nightly-backup")
    _run(q, clock, W2, error="exit code 1: pg_dump: connection refused", took=2)
    clock.advance(30)
    q.opened.close()


@pytest.fixture
def schedules_db(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fixture queue plus schedules and the jobs they made."""
    monkeypatch.chdir(tmp_path)
    build_queue(tmp_path / "queue.db", clock)
    add_schedules(tmp_path / "queue.db", clock)
    return "queue.db"


def add_trends(path: Path, clock: FakeClock) -> None:
    """An hour and a half of runs on top of the fixture queue (its own fixture:
    they would change every other picture): `reports` steady and quick, `hooks`
    in bursts with failures, `mail` slow; then the clock stops at a known time."""
    q = Queue(open_database(str(path)), clock=clock, ids=Ids(random.Random(31)))
    rng = random.Random(8)
    plan = {"reports": (0.6, 2.0, 0.0), "hooks": (0.25, 0.5, 0.35), "mail": (0.15, 40.0, 0.1)}
    for minute in range(90):
        for name, (chance, took, fails) in plan.items():
            burst = 4 if name == "hooks" and 50 <= minute < 58 else 1
            for _ in range(burst if rng.random() < chance * burst else 0):
                q.enqueue(JobSpec(command=f"./{name}.sh", queue=name, priority=50,
                                  max_retries=0))
                claimed = q.claim(W2, 30)
                assert claimed is not None and claimed.queue == name
                started = clock.now()
                clock.advance(round(took * (0.5 + rng.random()), 3))
                bad = rng.random() < fails
                q.finish_and_claim(claimed, W2, exit_code=1 if bad else 0,
                                   error="exit code 1" if bad else None, started_at=started)
        clock.advance(60 - (clock.now() - START) % 60)
    q.opened.close()


@pytest.fixture
def trends_db(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fixture queue plus an hour and a half of finished runs."""
    monkeypatch.chdir(tmp_path)
    build_queue(tmp_path / "queue.db", clock)
    add_trends(tmp_path / "queue.db", clock)
    return "queue.db"
