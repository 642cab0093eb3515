"""A driver's failures as the engine's own errors, Peewee's classes kept.

Peewee turns a driver's exception into one of its own classes (OperationalError,
IntegrityError, ...). The databases queuectl opens (`databases.py`) make that
same exception a `StorageError` too as it leaves Peewee: the engine goes on
catching Peewee's classes where it decides on them (a busy lock, a unique key
taken), while a face catches `StorageError` and never imports Peewee.

The exception object stays Peewee's own; only its class is narrowed to a twin
of the same name that is both. So its message, its driver error (`orig`), its
context and its traceback are as before, and so is every line that names its
class.
"""

from __future__ import annotations

from types import TracebackType

import peewee as pw


class StorageError(Exception):
    """A database failure as the driver reported it (locked, damaged, the
    connection lost, a constraint broken). Not a QueuectlError: its text is the
    driver's, not a message for a person; a face turns it into one with
    `describe_db_error`."""


class StorageUnavailable(StorageError):
    """The database could not be used just now: locked, busy, the connection
    lost or refused. A loop that goes on (a worker) says so and tries again;
    the other storage errors (a constraint broken, a statement refused) do not
    go away by waiting."""


# Peewee's classes, each also a storage error; the same names, so a line that
# names the class reads as before.
class DatabaseError(pw.DatabaseError, StorageError):
    pass


class DataError(pw.DataError, StorageError):
    pass


class IntegrityError(pw.IntegrityError, StorageError):
    pass


class InterfaceError(pw.InterfaceError, StorageUnavailable):
    pass


class InternalError(pw.InternalError, StorageError):
    pass


class NotSupportedError(pw.NotSupportedError, StorageError):
    pass


class OperationalError(pw.OperationalError, StorageUnavailable):
    pass


class ProgrammingError(pw.ProgrammingError, StorageError):
    pass


TWINS: dict[type, type] = {
    pw.DatabaseError: DatabaseError, pw.DataError: DataError,
    pw.IntegrityError: IntegrityError, pw.InterfaceError: InterfaceError,
    pw.InternalError: InternalError, pw.NotSupportedError: NotSupportedError,
    pw.OperationalError: OperationalError, pw.ProgrammingError: ProgrammingError,
}


PEEWEE_ERRORS: tuple[type[Exception], ...] = tuple(TWINS)


def narrow(exc: BaseException) -> None:
    """Give a Peewee exception its storage twin's class (the same object goes on)."""
    twin = TWINS.get(type(exc))
    if twin is not None:
        exc.__class__ = twin


class _AsStorageErrors:
    """A context whose Peewee exceptions leave it as their storage twins."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is not None:
            narrow(exc)
        return False


as_storage_errors = _AsStorageErrors()
