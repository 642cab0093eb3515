"""An open database: the handle the engine holds, with what it needs to stay
honest (the file it opened, whether its connection was lost) and to let a
person give up a write."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import peewee as pw

from queuectl_tui.engine.storage.backends.base import Backend
from queuectl_tui.engine.storage.databases import SqliteDatabase
from queuectl_tui.engine.storage.errors import Unreachable, describe_db_error


@dataclass
class Opened:
    """An open database with its backend and where job logs go."""

    db: pw.Database
    backend: Backend
    target: str
    log_dir: Path
    identity: tuple[int, int] | None = None  # SQLite: (st_dev, st_ino) of the file opened
    path: str | None = None  # SQLite: the file's absolute path (as SQLite itself resolved it)

    def file_gone(self) -> str | None:
        """Why the path no longer names the file this process holds, or None.

        A SQLite file deleted or replaced under an open connection is still
        written through its old inode, and a leftover -wal beside a new file
        would be shared with the new one: whoever polls (workers, supervisors,
        the console) must stop writing as soon as this says anything.
        PostgreSQL has no file: always None.
        """
        if self.identity is None:
            return None
        try:
            st = os.stat(self.path or os.path.expanduser(self.target))
        except FileNotFoundError:
            return f"the database file {self.target} was deleted"
        except OSError as exc:
            return f"the database file {self.target} cannot be read: {exc.strerror}"
        if (st.st_dev, st.st_ino) != self.identity:
            return f"the database file {self.target} was replaced by another file"
        return None

    def connection_lost(self) -> bool:
        """Whether this thread's connection was closed under it (the server
        restarted, the backend was terminated, the network dropped). psycopg2
        marks such a connection closed at the first call that fails; peewee
        still holds it and every later call fails with "connection already
        closed". SQLite connections are never lost this way."""
        if self.db.is_closed():
            return False
        return bool(getattr(self.db.connection(), "closed", 0))

    def failed_to_connect(self) -> bool:
        """After a failed call: whether it failed opening its connection (peewee
        connects on first use, so a server that is down fails the call itself)."""
        return self.backend.name == "postgresql" and self.db.is_closed()

    def reconnect(self) -> None:
        """Forget this thread's connection, however broken, and open a new one
        now; Unreachable if the server cannot be reached (the next use tries
        again by itself). Other threads' connections are theirs to renew."""
        while self.db.in_transaction():  # a lost connection's transaction is gone with it
            self.db.pop_transaction()
        try:
            self.db.close()
        except (pw.DatabaseError, pw.InterfaceError):
            pass  # already closed by the driver: peewee forgets it all the same
        try:
            self.db.connect(reuse_if_open=True)
        except (pw.DatabaseError, pw.InterfaceError) as exc:
            raise Unreachable(describe_db_error(exc, self.target)) from None

    def check_connection(self) -> None:
        """Make sure this thread's connection answers, reconnecting at once if it
        was lost: before a write, whose failure half way could not be retried
        (PostgreSQL: one round trip; SQLite: nothing to check)."""
        if self.backend.name != "postgresql" or self.db.is_closed():
            return
        try:
            self.db.execute_sql("SELECT 1").fetchone()
        except (pw.DatabaseError, pw.InterfaceError):
            if not self.connection_lost():
                raise
            self.reconnect()

    def give_up_when(self, check: Callable[[], bool] | None) -> None:
        """Write transactions begun on this thread from now on wait for the
        write lock in short slices and raise GaveUp as soon as `check()` is
        true (a person pressed Esc); None: the plain busy wait again. SQLite
        only: its busy handler cannot be interrupted from outside. For a
        PostgreSQL write, `interrupt` stops a wait from another thread."""
        if isinstance(self.db, SqliteDatabase):
            self.db.give_up.check = check

    def current_connection(self) -> Any:
        """This thread's driver connection (opened if need be), for `interrupt`
        from another thread."""
        return self.db.connection()

    @property
    def pool_log(self) -> Path:
        """Where detached worker pools (`worker start --detach`, the console) log."""
        return self.log_dir / "workers.log"

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()
