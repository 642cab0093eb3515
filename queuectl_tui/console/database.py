"""The console's database threads: every read, write and slow read goes through here.

Every read the console makes runs on one thread, in order, through
`Database.call`; every write on another, through `Database.write`, so a write
that waits for a lock (another process inside BEGIN IMMEDIATE) never holds up
the reads behind it, and the UI thread waits on neither. Peewee keeps one
connection per thread, so no connection is used by two threads at once. The
functions run on those threads (see reads.py) call `Queue` methods and the
engine's reads (no SQL here) and return plain data, so screens only format.

Faults are met here (see faults.py): a connection the server dropped is
reopened (at once for a read; a write is never repeated, it says it may not
have been saved), and a SQLite file deleted or replaced under the console stops
every write (`Opened.file_gone`, looked at before and after each one) until
`reopen`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from queuectl_tui.clock import Clock, Ids
from queuectl_tui.console.faults import (Cancelled, FileGone, Lost, MissingDatabase, drop_lost,
                                         ready_connection, translated)
from queuectl_tui.console.read_only import OFF, ReadOnlyRefused
from queuectl_tui.engine import (GaveUp, Queue, StateCounts, Unreachable, interrupt,
                                 is_postgres_url, open_database, redact, resolve_target)
from queuectl_tui.errors import DatabaseError
from queuectl_tui.workers.signals import LocalProcesses

T = TypeVar("T")

# A PostgreSQL server that silently drops packets would hold a database thread
# in connect for as long as TCP retries (minutes): libpq gives up after this.
CONNECT_TIMEOUT_S = 5

@dataclass
class Write:
    """A write submitted to the write thread and not finished yet."""

    started: float  # monotonic
    give_up: threading.Event = field(default_factory=threading.Event)
    connection: Any = None  # the write thread's driver connection while it runs



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
                 ids: Ids | None = None, threaded: bool = True, read_only: bool = False) -> None:
        self.db_arg = db_arg
        self.read_only = read_only  # every write refused (read_only.py)
        self.target = resolve_target(db_arg)
        self.clock = clock or Clock()
        self.ids = ids
        self.queue: Queue | None = None
        # Header counts, followed through the event log from a full count that
        # (threaded) runs on the slow thread.
        self.counter = StateCounts(inline=not threaded)
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
        was called while it waited for a lock; ReadOnlyRefused in a read-only console."""
        if self.read_only:
            raise ReadOnlyRefused(f"{OFF}: nothing was changed")
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
            return translated(fn, queue, args, self.target)
        except Lost:
            queue.opened.reconnect()  # Unreachable if the server does not answer
            try:
                return translated(fn, queue, args, self.target)
            except Lost as lost:
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
            write.connection = translated(ready_connection, queue, (), self.target)
            opened.give_up_when(write.give_up.is_set)
            try:
                result = translated(fn, queue, args, self.target)
            finally:
                opened.give_up_when(None)
                write.connection = None
        except Lost as lost:
            drop_lost(opened)
            raise DatabaseError(f"{lost.message}: the connection was lost during the change, "
                                "which may or may not have been saved; look before trying "
                                "again") from None
        except (DatabaseError, Cancelled) as exc:
            if write.give_up.is_set():
                raise GaveUp(f"gave up waiting for {redact(self.target)}; nothing was "
                             "changed") from None
            if isinstance(exc, Cancelled):
                raise DatabaseError(exc.message) from None
            raise
        gone = opened.file_gone()
        if gone:
            raise FileGone(f"{gone} during the change: it went into the old file and is "
                           "not saved")
        return result

    def _open(self, create: bool) -> Queue:
        if self.queue is None:
            if not create and not is_postgres_url(self.target) \
                    and not os.path.exists(os.path.expanduser(self.target)):
                raise MissingDatabase(f"no database at {self.target} yet")
            self.queue = Queue(open_database(self.db_arg, create=create,
                                             connect_timeout=CONNECT_TIMEOUT_S),
                               clock=self.clock, ids=self.ids, processes=LocalProcesses())
            self.queue.act_as("console")
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
        self.counter = StateCounts(inline=not self.threaded)
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

