"""The console's database threads and the snapshots they hand to the screens.

Every read the console makes runs on one thread, in order, through
`Database.call`; every write on another, through `Database.write`, so a write
that waits for a lock (another process inside BEGIN IMMEDIATE) never holds up
the reads behind it, and the UI thread waits on neither. Peewee keeps one
connection per thread, so no connection is used by two threads at once. The
functions below run on those threads; they call `Queue` methods and
`engine.views` (no SQL here) and return plain data, so screens only format.

Faults are met here: a connection the server dropped is reopened (at once for
a read; a write is never repeated, it says it may not have been saved), and a
SQLite file deleted or replaced under the console stops every write
(`Opened.file_gone`, looked at before and after each one) until `reopen`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from queuectl_tui.clock import Clock, Ids
from queuectl_tui.engine import views
from queuectl_tui.engine import (GaveUp, Opened, Unreachable, describe_db_error, interrupt,
                                 is_postgres_url, is_sqlite_error, open_database, redact,
                                 resolve_target, was_cancelled)
from queuectl_tui.engine.queue import Queue
from queuectl_tui.errors import DatabaseError, QueuectlError

T = TypeVar("T")


class MissingDatabase(DatabaseError):
    """No database file yet: the console says how to make one."""


class FileGone(DatabaseError):
    """The SQLite file the console opened was deleted or replaced: what it
    shows is as it was, and nothing is written until the path is reopened."""


RETRY_S = (1.0, 2.0, 4.0, 8.0, 15.0)  # waits between tries to reach a lost server
# A PostgreSQL server that silently drops packets would hold a database thread
# in connect for as long as TCP retries (minutes): libpq gives up after this.
CONNECT_TIMEOUT_S = 5


@dataclass
class Backoff:
    """When to try a server that cannot be reached again: 1 s after the first
    failure, then 2, 4, 8 and every 15 s, so a console left open on a server
    that is down does not knock on it every second; reset by a success."""

    failures: int = 0
    next_at: float | None = None  # monotonic; None: try whenever asked

    def failed(self, now: float) -> float:
        """Count a failure; returns the wait before the next try."""
        wait = RETRY_S[min(self.failures, len(RETRY_S) - 1)]
        self.failures += 1
        self.next_at = now + wait
        return wait

    def succeeded(self) -> None:
        self.failures, self.next_at = 0, None

    def wait_left(self, now: float) -> float:
        """Seconds before the next try is due (0: due)."""
        return 0.0 if self.next_at is None else max(0.0, self.next_at - now)


@dataclass
class Write:
    """A write submitted to the write thread and not finished yet."""

    started: float  # monotonic
    give_up: threading.Event = field(default_factory=threading.Event)
    connection: Any = None  # the write thread's driver connection while it runs


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
    """One queue, three threads, each with its own connection: reads (`call`),
    writes (`write`) and slow reads (`call_slow`).

    Reads that take long on a big queue (a full count of every state, counts
    per queue) run on the slow thread, so a key's read never waits behind them;
    the views show what they last had. A write waiting for a lock holds up
    neither, and can be given up (`give_up`).

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
        self._writer = (ThreadPoolExecutor(1, thread_name_prefix="queuectl-db-write")
                        if threaded else None)
        self.writes: list[Write] = []  # submitted and not finished, oldest first
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

    async def write(self, fn: Callable[..., T], *args: Any, create: bool = False) -> T:
        """Run the write `fn(queue, *args)` on the write thread, in order with
        other writes. Refused (FileGone) if the file is gone before it starts,
        and reported not saved if it went while it ran; GaveUp if `give_up`
        was called while it waited for a lock."""
        write = Write(started=self.clock.monotonic())
        self.writes.append(write)
        if self._writer is None:
            try:
                return self._guarded_write(write, fn, args, create)
            finally:
                self._forget(write)
        future = self._writer.submit(self._guarded_write, write, fn, args, create)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        waited = asyncio.wrap_future(future)
        waited.add_done_callback(lambda done: self._finished(write, done))  # on the loop
        try:
            return await asyncio.shield(waited)
        except asyncio.CancelledError:
            self._stop(write)  # whoever asked is gone (a dialog closed, the console quit)
            raise

    def _forget(self, write: Write) -> None:
        if write in self.writes:
            self.writes.remove(write)

    def _finished(self, write: Write, done: asyncio.Future) -> None:
        """A write ended: no longer waiting. Its error is taken here too: when
        whoever awaited it was cancelled (the console quitting), nobody else
        would, and asyncio would log it at garbage collection."""
        self._forget(write)
        if not done.cancelled():
            done.exception()

    def waiting_writes(self, longer_than: float) -> int:
        """How many writes have been running longer than `longer_than` seconds."""
        now = self.clock.monotonic()
        return sum(1 for w in self.writes if now - w.started > longer_than)

    def give_up(self) -> int:
        """Stop every write still waiting: a SQLite one between two slices of
        its lock wait, a PostgreSQL one by a cancel request. Each then fails
        with GaveUp (nothing written). Returns how many were asked."""
        for write in self.writes:
            self._stop(write)
        return len(self.writes)

    @staticmethod
    def _stop(write: Write) -> None:
        write.give_up.set()
        if write.connection is not None:
            interrupt(write.connection)

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
        """A read: refused once the file is gone; a connection the server
        dropped is reopened and the read tried once more."""
        queue = self._open(create)
        gone = queue.opened.file_gone()
        if gone:
            raise FileGone(gone)
        try:
            return self._translated(fn, queue, args)
        except _Lost:
            queue.opened.reconnect()  # Unreachable if the server does not answer
            try:
                return self._translated(fn, queue, args)
            except _Lost as lost:
                raise Unreachable(lost.message) from None

    def _guarded_write(self, write: Write, fn: Callable[..., T], args: tuple,
                       create: bool) -> T:
        """A write: never repeated (its commit may have reached the server before
        the connection dropped), and never reported saved into a file that is gone."""
        queue = self._open(create)
        opened = queue.opened
        gone = opened.file_gone()
        if gone:
            raise FileGone(f"{gone}; nothing was written")
        try:
            # Connecting (a first use, a server down) fails like any call would.
            write.connection = self._translated(_ready_connection, queue, ())
            opened.give_up_when(write.give_up.is_set)
            try:
                result = self._translated(fn, queue, args)
            finally:
                opened.give_up_when(None)
                write.connection = None
        except _Lost as lost:
            self._drop_lost(opened)
            raise DatabaseError(f"{lost.message}: the connection was lost during the change, "
                                "which may or may not have been saved; look before trying "
                                "again") from None
        except (DatabaseError, _Cancelled) as exc:
            if write.give_up.is_set():
                raise GaveUp(f"gave up waiting for {redact(self.target)}; nothing was "
                             "changed") from None
            if isinstance(exc, _Cancelled):
                raise DatabaseError(exc.message) from None
            raise
        gone = opened.file_gone()
        if gone:
            raise FileGone(f"{gone} during the change: it went into the old file and is "
                           "not saved")
        return result

    def _translated(self, fn: Callable[..., T], queue: Queue, args: tuple) -> T:
        """`fn(queue, *args)` with driver errors turned into one-line messages
        (_Lost when the connection itself is gone)."""
        try:
            return fn(queue, *args)
        except QueuectlError:
            raise
        except Exception as exc:
            if is_sqlite_error(exc) or _is_driver_error(exc):
                message = describe_db_error(exc, self.target)
                if queue.opened.connection_lost():
                    raise _Lost(message) from None
                if queue.opened.failed_to_connect():
                    raise Unreachable(message) from None
                if was_cancelled(exc):
                    raise _Cancelled(message) from None
                raise DatabaseError(message) from None
            if isinstance(exc, OSError):
                raise DatabaseError(f"{exc.strerror or exc} ({exc.filename or self.target})"
                                    ) from None
            raise

    @staticmethod
    def _drop_lost(opened: Opened) -> None:
        try:
            opened.reconnect()
        except Unreachable:
            pass  # the next call tries again

    def _open(self, create: bool) -> Queue:
        if self.queue is None:
            if not create and not is_postgres_url(self.target) \
                    and not os.path.exists(os.path.expanduser(self.target)):
                raise MissingDatabase(f"no database at {self.target} yet")
            self.queue = Queue(open_database(self.db_arg, create=create,
                                             connect_timeout=CONNECT_TIMEOUT_S),
                               clock=self.clock, ids=self.ids)
        return self.queue

    async def reopen(self) -> None:
        """Forget the database opened so far (a file deleted or replaced under
        the console): each thread closes its own connection, and the next call
        opens the path again, with counts and slow reads started afresh. SQLite
        neither checkpoints nor deletes a -wal through a file that has moved."""
        old = self.queue
        if old is None:
            return
        for executor in (self._executor, self._slow, self._writer):
            if executor is not None:
                await asyncio.wrap_future(executor.submit(self._close_connection, old))
        if not self.threaded:
            self._close_connection(old)
        self.queue = None
        self.counter = views.StateCounts(inline=not self.threaded)
        self.slow_results.clear()

    def close(self) -> None:
        """Quitting: a write still waiting for a lock is given up (else the
        console would stay up to the busy timeout after q), then each thread
        closes its own connection."""
        self.give_up()
        queue = self.queue
        for executor in (self._slow, self._writer, self._executor):
            if executor is not None:
                # Peewee keeps one connection per thread: each is closed on its own.
                executor.submit(self._close_connection, queue)
                executor.shutdown(wait=True, cancel_futures=True)
        if not self.threaded:
            self._close_connection(queue)
        if queue is not None:
            queue.opened.close()

    @staticmethod
    def _close_connection(queue: Queue | None) -> None:
        if queue is None:
            return
        try:
            queue.opened.close()
        except Exception:  # noqa: BLE001 - a broken connection: closing it is all we want
            pass


def _ready_connection(queue: Queue) -> Any:
    """This thread's connection, answering (renewed if it was dropped while idle)."""
    queue.opened.check_connection()
    return queue.opened.current_connection()


class _Lost(Exception):
    """The connection was dropped under a call (see Opened.connection_lost)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Cancelled(Exception):
    """A PostgreSQL statement stopped by a cancel request (see Database.give_up)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
    job["stranded"] = stranded_note(queue, job)
    data, new_offset = views.log_tail(queue.opened, job["seq"], offset)
    jumped = new_offset - len(data) != offset  # not where the last read ended
    data, new_offset = whole_characters(data, new_offset, jumped=jumped)
    if new_offset or offset is not None:
        return Detail(job=job, output=data.decode("utf-8", errors="replace"),
                      offset=new_offset, from_log=True)
    parts = []
    if job.get("stdout_tail"):
        parts.append(job["stdout_tail"].rstrip("\n"))
    if job.get("stderr_tail"):
        parts.append("--- stderr ---\n" + job["stderr_tail"].rstrip("\n"))
    return Detail(job=job, output="\n".join(parts), offset=0, from_log=False)


def whole_characters(data: bytes, end: int, *, jumped: bool) -> tuple[bytes, int]:
    """A log read cut to whole UTF-8 characters, and the offset after them: a
    character a running job has half written is left for the next read (so it
    is decoded whole, not as two "\ufffd"), and a read that `jumped` into the log
    (not where the last one ended) drops the continuation bytes it starts in."""
    if jumped:
        skip = 0
        while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
            skip += 1
        data = data[skip:]
    for back in range(1, min(3, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: its lead is further back
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else \
            4 if byte & 0xF8 == 0xF0 else 1
        if need > back:  # the character's last bytes are not written yet
            return data[:-back], end - back
        break
    return data, end


def stranded_note(queue: Queue, job: dict[str, Any]) -> str | None:
    """Why a `processing` job is not running: its worker is gone (Queue.stranded,
    what `queuectl show` says); None for any other job, or one whose worker lives."""
    if job["state"] != "processing":
        return None
    gone = queue.stranded([job["id"]])
    return gone[0]["note"] if gone else None


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
