"""The console's database thread and the snapshots it hands to the screens.

Every read and every write the console makes runs on one thread, in order,
through `Database.call`: the UI thread never waits on SQLite, and one
connection is never used by two threads at once. The functions below run on
that thread; they call `Queue` methods and `engine.views` (no SQL here) and
return plain data, so screens only format.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from queuectl_tui.clock import Clock, Ids
from queuectl_tui.engine import views
from queuectl_tui.engine.db import (describe_db_error, is_postgres_url, is_sqlite_error,
                                    open_database, resolve_target)
from queuectl_tui.engine.queue import Queue
from queuectl_tui.errors import DatabaseError, QueuectlError

T = TypeVar("T")


class MissingDatabase(DatabaseError):
    """No database file yet: the console says how to make one."""


@dataclass
class Summary:
    """What the header strip shows: counts per state, live workers, throughput."""

    now: float
    counts: dict[str, int]
    live_workers: int
    throughput: list[int]  # finished runs per 10 s bucket, oldest first
    counted: bool = True  # False: the first full count is still running (counts empty)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        """Jobs finished per second over the last minute."""
        return sum(self.throughput[-6:]) / 60.0


@dataclass
class Detail:
    """One job's fields and the output read since the last look."""

    job: dict[str, Any] | None
    output: str = ""
    offset: int = 0
    from_log: bool = False


@dataclass
class Snapshot:
    """One refresh: the summary plus what the current view asked for."""

    summary: Summary | None  # None: not asked for (a key's read)
    view: Any = None
    view_seconds: float = 0.0  # how long the view's own read took


def _is_driver_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("peewee", "psycopg2", "psycopg")


class Database:
    """One thread, one connection, one queue; every call goes through `call`.

    Reads that take long on a big queue (a full count of every state, counts
    per queue) run on a second thread with its own connection (`call_slow`), so
    a key's read never waits behind them; the views show what they last had.

    `threaded=False` runs calls inline on the caller's thread: snapshot tests
    use it so a picture never races a refresh.
    """

    def __init__(self, db_arg: str | None, *, clock: Clock | None = None,
                 ids: Ids | None = None, threaded: bool = True) -> None:
        self.db_arg = db_arg
        self.target = resolve_target(db_arg)
        self.clock = clock or Clock()
        self.ids = ids
        self.queue: Queue | None = None
        # Header counts, followed through the event log from a full count that
        # (threaded) runs on the slow thread.
        self.counter = views.StateCounts(inline=not threaded)
        self._executor = (ThreadPoolExecutor(1, thread_name_prefix="queuectl-db")
                          if threaded else None)
        self._slow = (ThreadPoolExecutor(1, thread_name_prefix="queuectl-db-slow")
                      if threaded else None)
        self._pending: set[Future] = set()
        self._slow_running: set[str] = set()
        self.slow_results: dict[str, tuple[Any, float]] = {}  # name -> (value, monotonic)

    # ------------------------------------------------------------ running calls

    async def call(self, fn: Callable[..., T], *args: Any, create: bool = False) -> T:
        """Run `fn(queue, *args)` on the database thread; errors come back as QueuectlError."""
        if self._executor is None:
            return self._guarded(fn, args, create)
        future = self._executor.submit(self._guarded, fn, args, create)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return await asyncio.wrap_future(future)

    async def call_slow(self, name: str, fn: Callable[..., T], *args: Any) -> T | None:
        """Run `fn(queue, *args)` on the slow thread (its own connection) once the
        queue is open; one call per `name` at a time (None if one is running).
        The result is kept in `slow_results[name]` with when it was read."""
        if name in self._slow_running or self.queue is None:
            return None
        self._slow_running.add(name)
        try:
            if self._slow is None:
                result = self._guarded(fn, args, False)
            else:
                result = await asyncio.wrap_future(
                    self._slow.submit(self._guarded, fn, args, False))
        finally:
            self._slow_running.discard(name)
        self.slow_results[name] = (result, self.clock.monotonic())
        return result

    def slow_age(self, name: str) -> float | None:
        """Seconds since `name` was last read on the slow thread (None: never)."""
        found = self.slow_results.get(name)
        return None if found is None else self.clock.monotonic() - found[1]

    @property
    def threaded(self) -> bool:
        """Calls run on database threads (False: inline, for pictures and tests)."""
        return self._executor is not None

    @property
    def busy(self) -> bool:
        """A call of the UI's is running or waiting (slow reads do not count:
        nothing on screen waits for them)."""
        return bool(self._pending)

    async def idle(self) -> None:
        """Wait until every call submitted so far has finished (tests use this)."""
        while self._pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in list(self._pending)])

    def _guarded(self, fn: Callable[..., T], args: tuple, create: bool) -> T:
        try:
            return fn(self._open(create), *args)
        except QueuectlError:
            raise
        except Exception as exc:
            if is_sqlite_error(exc) or _is_driver_error(exc):
                raise DatabaseError(describe_db_error(exc, self.target)) from None
            if isinstance(exc, OSError):
                raise DatabaseError(f"{exc.strerror or exc} ({exc.filename or self.target})"
                                    ) from None
            raise

    def _open(self, create: bool) -> Queue:
        if self.queue is None:
            if not create and not is_postgres_url(self.target) \
                    and not os.path.exists(os.path.expanduser(self.target)):
                raise MissingDatabase(f"no database at {self.target} yet")
            self.queue = Queue(open_database(self.db_arg, create=create),
                               clock=self.clock, ids=self.ids)
        return self.queue

    def close(self) -> None:
        if self._slow is not None:
            # Its connection is its own (Peewee keeps one per thread): closed there.
            self._slow.submit(self._close_thread_connection)
            self._slow.shutdown(wait=True, cancel_futures=True)
        if self._executor is not None:
            self._executor.submit(self._close_queue)
            self._executor.shutdown(wait=True, cancel_futures=True)
        else:
            self._close_queue()

    def _close_thread_connection(self) -> None:
        if self.queue is not None and not self.queue.db.is_closed():
            self.queue.db.close()

    def _close_queue(self) -> None:
        if self.queue is not None:
            self.queue.opened.close()


# ---------------------------------------------------------------- snapshots (db thread)

def summary(queue: Queue, counter: views.StateCounts) -> Summary:
    now = queue.clock.now()
    counts = counter.read(queue, queue.clock.monotonic())
    return Summary(now=now, counts=counts or {}, counted=counts is not None,
                   live_workers=len(queue.live_workers()), throughput=views.throughput(now))


def refresh(queue: Queue, counter: views.StateCounts | None,
            load: Callable[[Queue], Any] | None) -> Snapshot:
    """The summary (unless `counter` is None) and, if given, the current view's
    own data, in one trip."""
    head = summary(queue, counter) if counter is not None else None
    if load is None:
        return Snapshot(summary=head)
    started = time.perf_counter()
    view = load(queue)
    return Snapshot(summary=head, view=view, view_seconds=time.perf_counter() - started)


def job_detail(queue: Queue, job_id: str | None, offset: int | None) -> Detail | None:
    """A job's fields, plus its log since `offset` (None: the tail), or its stored tails."""
    if job_id is None:
        return None
    job = views.job_detail(job_id)
    if job is None:
        return Detail(job=None)
    job["attempts_log"] = queue.attempts(job_id)
    job["after"] = queue.waiting_for(job_id)
    data, new_offset = views.log_tail(queue.opened, job["seq"], offset)
    if new_offset or offset is not None:
        return Detail(job=job, output=data.decode("utf-8", errors="replace"),
                      offset=new_offset, from_log=True)
    parts = []
    if job.get("stdout_tail"):
        parts.append(job["stdout_tail"].rstrip("\n"))
    if job.get("stderr_tail"):
        parts.append("--- stderr ---\n" + job["stderr_tail"].rstrip("\n"))
    return Detail(job=job, output="\n".join(parts), offset=0, from_log=False)


def workers(queue: Queue, include_stopped: bool) -> list[dict[str, Any]]:
    """Worker dicts as `queuectl worker list --json` shows them (gone ones included)."""
    return queue.workers(include_stopped=include_stopped)


@dataclass
class QueueRows:
    """The Queues view: `queue list --json` rows plus each queue's finished runs
    per 10 s over two minutes. `counted` False: the per-queue counts are still
    being read (the rows show none yet)."""

    rows: list[dict[str, Any]]
    counted: bool = True
    per_queue_needed: bool = False  # named queues: their counts come from the slow thread


def queue_rows(queue: Queue, per_queue: dict[str, dict[str, int]] | None,
               header: dict[str, int] | None, count_here: bool = False) -> QueueRows:
    """Counts come from what was read already: the header's (only `default`
    exists) or the slow thread's last count per queue; a count here only with
    `count_here` (one thread: pictures and tests)."""
    named = queue.has_named_queues()
    if named and per_queue is None and count_here:
        per_queue = queue.counts_by_queue()
    if not named and header is not None:
        found, counted = queue.queue_list(counts=header), True
    else:
        found, counted = queue.queue_list(by_queue=per_queue or {}), per_queue is not None
    activity = views.queue_activity(queue.clock.now())
    for q in found:
        q["activity"] = activity.get(q["name"], [0] * 12)
    return QueueRows(found, counted=counted, per_queue_needed=named)



def schedule_rows(queue: Queue) -> list[dict[str, Any]]:
    """`schedule list --json`: every schedule with its next run and last job."""
    from queuectl_tui.engine import schedules
    return schedules.list_all()


def trends(queue: Queue, span: str) -> Any:
    """The Trends view's figures for one span, ending now (engine/trends.py)."""
    from queuectl_tui.engine import trends as engine_trends
    return engine_trends.read(queue.db, queue.clock.now(), span)


def config_rows(queue: Queue) -> dict[str, Any]:
    return queue.config_all()
