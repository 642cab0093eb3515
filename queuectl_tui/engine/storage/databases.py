"""The Peewee databases queuectl opens.

Both let a driver's failure out as a storage error (`driver_errors.py`), from
every door Peewee lets one out of: connecting, closing, a statement, and the
transaction's begin, commit and rollback. SQLite's also orders write
transactions by the writers' `flock` (`writer_lock.py`).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import peewee as pw

from queuectl_tui.engine.storage.driver_errors import PEEWEE_ERRORS, narrow
from queuectl_tui.engine.storage.errors import BUSY_TIMEOUT_S, GaveUp, is_busy
from queuectl_tui.engine.storage.writer_lock import WriterLock

LOCK_SLICE_MS = 100  # a write that may be given up waits for the lock in slices this long


class RaisesStorageErrors(pw.Database):
    """Peewee's database with its exceptions raised as storage errors. Each
    entry point catches rather than entering a context: a `try` costs nothing
    until it catches, and these run several times for every job."""

    def connect(self, reuse_if_open: bool = False) -> bool:
        try:
            return super().connect(reuse_if_open)
        except PEEWEE_ERRORS as exc:
            narrow(exc)
            raise

    def close(self) -> bool:
        try:
            return super().close()
        except PEEWEE_ERRORS as exc:
            narrow(exc)
            raise

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        try:
            return super().execute_sql(sql, params)
        except PEEWEE_ERRORS as exc:
            narrow(exc)
            raise

    def begin(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().begin(*args, **kwargs)
        except PEEWEE_ERRORS as exc:
            narrow(exc)
            raise

    def commit(self) -> None:
        try:
            super().commit()
        except PEEWEE_ERRORS as exc:
            narrow(exc)
            raise

    def rollback(self) -> None:
        try:
            super().rollback()
        except PEEWEE_ERRORS as exc:
            narrow(exc)
            raise


class PostgresqlDatabase(RaisesStorageErrors, pw.PostgresqlDatabase):
    """Peewee's, raising storage errors."""


class SqliteDatabase(RaisesStorageErrors, pw.SqliteDatabase):
    """Peewee's, raising storage errors, with write transactions ordered by the
    writers' `flock`: a waiting writer is woken by the commit it waits for
    instead of sleeping through SQLite's busy handler."""

    def init(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().init(database, *args, **kwargs)
        self.writer_lock = WriterLock(f"{database}.lock")
        self.give_up = threading.local()  # .check: see Opened.give_up_when

    def begin(self, lock_type: str | None = None) -> None:
        writes = (lock_type or self._lock_type or "").upper() in ("IMMEDIATE", "EXCLUSIVE")
        if writes:
            self.writer_lock.acquire()
        try:
            check = getattr(self.give_up, "check", None) if writes else None
            if check is None:
                super().begin(lock_type)
            else:
                self._begin_unless(check, lock_type)
        except BaseException:
            self.writer_lock.release()
            raise

    def _begin_unless(self, check: Callable[[], bool], lock_type: str | None) -> None:
        """BEGIN, waiting for the write lock in slices of LOCK_SLICE_MS, each
        followed by a look at `check`, up to the usual busy timeout in all."""
        conn = self.connection()
        conn.execute(f"PRAGMA busy_timeout = {LOCK_SLICE_MS}")
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        try:
            while True:
                try:
                    super().begin(lock_type)
                    return
                except pw.OperationalError as exc:
                    if not is_busy(exc) or time.monotonic() >= deadline:
                        raise
                if check():
                    raise GaveUp(f"gave up waiting for the lock on {self.database}; "
                                 "nothing was changed")
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.writer_lock.release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.writer_lock.release()


def interrupt(connection: Any) -> None:
    """Stop what a PostgreSQL connection of another thread is running now (a
    cancel request: its transaction rolls back). A SQLite write waiting for the
    lock is given up through `Opened.give_up_when` instead."""
    cancel = getattr(connection, "cancel", None)
    if cancel is not None:
        try:
            cancel()
        except Exception:  # noqa: BLE001 - the driver's own errors: nothing left to stop
            pass
