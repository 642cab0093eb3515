"""What can go wrong under the console's database threads, and how it is told.

A driver error becomes one line (`translated`): the connection itself lost
(`Lost`, a read is tried once more, a write is not), a server that cannot be
reached (`Unreachable`), a statement stopped by a cancel request
(`Cancelled`), anything else a `DatabaseError`. A SQLite file deleted or
replaced under the console is `FileGone`; no file yet is `MissingDatabase`.
A server that cannot be reached is tried again on a `Backoff`.

Driver errors are recognised by the module their class comes from, so the
console names no database library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from queuectl_tui.engine import (Opened, Queue, Unreachable, describe_db_error,
                                 is_storage_error, was_cancelled)
from queuectl_tui.errors import DatabaseError, QueuectlError

T = TypeVar("T")

RETRY_S = (1.0, 2.0, 4.0, 8.0, 15.0)  # waits between tries to reach a lost server


class MissingDatabase(DatabaseError):
    """No database file yet: the console says how to make one."""


class FileGone(DatabaseError):
    """The SQLite file the console opened was deleted or replaced: what it
    shows is as it was, and nothing is written until the path is reopened."""


class Lost(Exception):
    """The connection was dropped under a call (see Opened.connection_lost)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Cancelled(Exception):
    """A PostgreSQL statement stopped by a cancel request (see Database.give_up)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


def translated(fn: Callable[..., T], queue: Queue, args: tuple, target: str) -> T:
    """`fn(queue, *args)` with driver errors turned into one-line messages
    (Lost when the connection itself is gone)."""
    try:
        return fn(queue, *args)
    except QueuectlError:
        raise
    except Exception as exc:
        if is_storage_error(exc):
            message = describe_db_error(exc, target)
            if queue.opened.connection_lost():
                raise Lost(message) from None
            if queue.opened.failed_to_connect():
                raise Unreachable(message) from None
            if was_cancelled(exc):
                raise Cancelled(message) from None
            raise DatabaseError(message) from None
        if isinstance(exc, OSError):
            raise DatabaseError(f"{exc.strerror or exc} ({exc.filename or target})"
                                ) from None
        raise


def drop_lost(opened: Opened) -> None:
    """Reconnect after a write lost its connection; a server still down is
    left for the next call to find."""
    try:
        opened.reconnect()
    except Unreachable:
        pass  # the next call tries again


def ready_connection(queue: Queue) -> Any:
    """This thread's connection, answering (renewed if it was dropped while idle)."""
    queue.opened.check_connection()
    return queue.opened.current_connection()
