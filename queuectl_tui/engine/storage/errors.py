"""What can go wrong with a database, and the one line a person reads for it.

The faces show `describe_db_error`'s line for any driver failure; the engine
raises `Unreachable` and `GaveUp` where a face must act differently (try again
later; say nothing was written).
"""

from __future__ import annotations

import os
import sqlite3

import peewee as pw

from queuectl_tui.engine.storage import location
from queuectl_tui.engine.storage.driver_errors import StorageError
from queuectl_tui.errors import DatabaseError

CREATE_HINT = ("a command that writes creates it (queuectl enqueue …, queuectl worker start), "
               "or pass --db / set QUEUECTL_DB to the right one")
# How long a SQLite write waits for the lock before failing as locked (the
# message for that failure names the wait).
BUSY_TIMEOUT_S = float(os.environ.get("QUEUECTL_BUSY_TIMEOUT", "10"))


class Unreachable(DatabaseError):
    """The database server cannot be reached (refused, unknown host, dropped):
    a face that stays open tries again later rather than giving up."""


class GaveUp(DatabaseError):
    """A write stopped waiting for a lock because a person asked it to: nothing
    of it was written."""


def describe_db_error(exc: Exception, target: str) -> str:
    """Turn a driver error into one line a person can act on."""
    raw, target = target, location.redact(target)
    # On SQLITE_FULL/IOERR SQLite rolls back by itself; peewee's own rollback (of
    # the transaction, or of a savepoint inside it) then fails, hiding the cause:
    # report the cause.
    while any(lost in str(exc) for lost in ("no transaction is active", "no such savepoint")) \
            and exc.__context__ is not None:
        exc = exc.__context__
    text = location.scrub(str(exc).strip(), raw) or exc.__class__.__name__
    low = text.lower()
    if "locked" in low or "busy" in low:
        return (f"database {target} is locked by another process "
                f"(waited {BUSY_TIMEOUT_S:g} s); try again")
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return f"database {target} is damaged or not a queuectl database: {text}"
    if "readonly" in low or "read-only" in low:
        return f"database {target} is read-only: {text}"
    if "permission denied for" in low:  # PostgreSQL: a role without this GRANT
        return (f"{target} refused the change: this role may not write there "
                f"({text.splitlines()[0]}); nothing was changed (docs/security.md)")
    if "unable to open" in low:
        return f"cannot open database {target}: {text}"
    if "disk" in low and "full" in low:
        return f"disk full while writing {target}: nothing was changed"
    if "could not connect" in low or "connection refused" in low or "does not exist" in low \
            or "could not translate host" in low or "authentication failed" in low:
        return f"cannot connect to {target}: {text.splitlines()[0]}"
    return f"database error on {target}: {text.splitlines()[0] if text else text}"


def is_busy(exc: BaseException) -> bool:
    """Whether a driver error says the database is locked by another writer."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def is_sqlite_error(exc: BaseException) -> bool:
    """Whether `exc` is a database failure `describe_db_error` can put in words:
    SQLite's own (a row read after the statement ran) or one of the storage
    layer's."""
    return isinstance(exc, (sqlite3.Error, pw.DatabaseError, StorageError))


def is_storage_error(exc: BaseException) -> bool:
    """Whether `exc` came from the database library or its driver, whatever
    path it took (`describe_db_error` puts it in words): what a face asks
    before showing an unexpected error, without knowing the library's names."""
    return is_sqlite_error(exc) or \
        type(exc).__module__.split(".")[0] in ("peewee", "psycopg2", "psycopg")


def was_cancelled(exc: BaseException) -> bool:
    """Whether a driver error is PostgreSQL's answer to a cancel request
    (SQLSTATE 57014, query_canceled), looked for through peewee's wrapping."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if getattr(seen, "pgcode", None) == "57014":
            return True
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) \
            else None
        seen = inner or seen.__context__
    return False
