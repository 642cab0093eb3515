"""Whether the writer of an unsealed bulk enqueue still lives: a lock it holds.

A bulk enqueue killed while staging leaves rows that hold their ids (a file
that names its ids stages in `job`). Whoever meets them next must know at once
whether to wait or to clear them, on any host: a pid says nothing about another
host, and an age of an hour is an hour of a file refused. So the writer holds a
lock for its batch from before the batch exists until it is published or
discarded, and the lock dies with the process:

- SQLite: a POSIX record lock on one byte of `<db>.batches`, at an offset drawn
  from the batch id (every process on the file shares one kernel);
- PostgreSQL: a session advisory lock keyed by the batch id, which the server
  drops with the writer's connection, from whatever host it came.

Whoever finds the lock free takes it and keeps it while it clears the batch,
so two clearers never race, and a clearer never looks like a live writer for
longer than its clearing.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Iterator

import peewee as pw

from queuectl_tui.engine.context import Context
from queuectl_tui.errors import DatabaseError

PG_LOCK_CLASS = 724013  # beside the PostgreSQL backend's 724011 (schema) and 724012 (limits)

_files: dict[str, int] = {}  # SQLite: path -> this process's one descriptor of `<db>.batches`
_held: set[str] = set()  # batches whose lock this process holds (its own or one it clears)


def hold(ctx: Context, batch: str) -> None:
    """Take the lock of a new batch of ours (before its row is written)."""
    if not _try(ctx, batch, wait=True):  # an interrupted wait: ids are 64 random bits
        raise DatabaseError(f"could not lock the new bulk enqueue {batch}; nothing was enqueued")
    _held.add(batch)


def let_go(ctx: Context, batch: str) -> None:
    """The batch is published or discarded: its lock is no longer needed."""
    if batch in _held:
        _held.discard(batch)
        try:
            _unlock(ctx, batch)
        except (OSError, pw.DatabaseError, pw.InterfaceError):
            pass  # a lost connection or descriptor took the lock with it


@contextmanager
def if_abandoned(ctx: Context, batch: str) -> Iterator[bool]:
    """True, holding the batch's lock meanwhile, when its writer is gone; False
    while the writer (or another process clearing it) holds the lock, and for
    this process's own batches."""
    try:
        free = batch not in _held and _try(ctx, batch, wait=False)
    except DatabaseError:  # no lock file to look at: leave the batch to its writer
        free = False
    if not free:
        yield False
        return
    _held.add(batch)
    try:
        yield True
    finally:
        let_go(ctx, batch)


def _try(ctx: Context, batch: str, *, wait: bool) -> bool:
    if ctx.backend.name == "postgresql":
        verb = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        row = ctx.db.execute_sql(f"SELECT {verb}({PG_LOCK_CLASS}, {_pg_key(batch)})").fetchone()
        return row[0] is not False
    fd = _file(ctx)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB), 1, _offset(batch))
    except OSError:
        return False
    return True


def _unlock(ctx: Context, batch: str) -> None:
    if ctx.backend.name == "postgresql":
        ctx.db.execute_sql(f"SELECT pg_advisory_unlock({PG_LOCK_CLASS}, {_pg_key(batch)})")
        return
    fcntl.lockf(_file(ctx), fcntl.LOCK_UN, 1, _offset(batch))


def _file(ctx: Context) -> int:
    """One descriptor per process, never closed: closing any descriptor of a
    file drops every POSIX lock the process holds on it."""
    path = f"{ctx.db.database}.batches"
    fd = _files.get(path)
    if fd is None:  # non-inheritable (Python's default): a job never holds a batch's lock
        try:
            fd = _files[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise DatabaseError(f"cannot open {path} (bulk enqueues lock it): "
                                f"{exc.strerror}") from None
    return fd


def _offset(batch: str) -> int:
    return int(batch[:15], 16)  # 60 bits: well inside off_t


def _pg_key(batch: str) -> int:
    return int(batch[:8], 16) - 2 ** 31  # an int4
