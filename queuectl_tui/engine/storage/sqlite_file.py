"""A SQLite file checked before anything is written to it, or born whole.

An existing file must be a SQLite database, not truncated, not someone else's,
and writable with its folder (WAL mode writes beside it, even to read). A new
one is created with mode 0600 and already in WAL mode (SQLite gives its -wal
and -shm files the same mode). Its identity (device, inode) lets a process see
later that the path names another file.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from queuectl_tui.engine.storage.errors import CREATE_HINT
from queuectl_tui.engine.storage.location import is_postgres_url
from queuectl_tui.errors import DatabaseError, NoDatabase

SQLITE_MAGIC = b"SQLite format 3\x00"


def identity(target: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of a SQLite file; None for PostgreSQL, which has no file."""
    if is_postgres_url(target):
        return None
    st = os.stat(Path(target).expanduser())
    return (st.st_dev, st.st_ino)


def check_or_create(path: Path, *, create: bool) -> None:
    """Refuse what is not a usable queuectl database; create a missing one if
    `create`, else say there is none (NoDatabase)."""
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a database file")
    if path.exists():
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise DatabaseError(f"cannot read {path}: {exc.strerror}") from None
        if head and head != SQLITE_MAGIC:
            raise DatabaseError(f"{path} is not a queuectl database (not an SQLite file)")
        if not head and not create:
            raise DatabaseError(f"{path} is an empty file, not a queuectl database yet; "
                                f"{CREATE_HINT}")
        _check_header(path)
        _check_not_foreign(path)
        for place in (path, path.parent):  # WAL mode writes beside the file, even to read
            if not os.access(place, os.W_OK):
                raise DatabaseError(
                    f"database {path} is read-only ({'file' if place == path else 'its folder'} "
                    "cannot be written); queuectl needs to write both, even to read")
        return
    if not create:
        raise NoDatabase(f"no database at {path}; {CREATE_HINT}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _create_in_wal_mode(path)
    except OSError as exc:
        raise DatabaseError(f"cannot create database {path}: {exc.strerror}") from None


def _create_in_wal_mode(path: Path) -> None:
    """Make the file whole and already in WAL mode, then link it into place.

    Switching the journal mode needs an exclusive lock that SQLite may refuse at
    once rather than wait for; a file that is born in WAL mode never needs the
    switch, however many processes open it together. os.link fails if another
    process created the database first, and then theirs is used.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.new")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode = wal")
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
def _check_not_foreign(path: Path) -> None:
    """Refuse someone else's SQLite file before anything (the switch to WAL mode
    included) is written to it. Every queuectl database is in WAL mode (header
    bytes 18-19 are 2), so only a file that is not needs a closer, read-only look."""
    with open(path, "rb") as fh:
        header = fh.read(20)
    if len(header) < 20 or header[18:20] == b"\x02\x02":
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error:
        return  # damage is reported by the real open, in its own words
    if tables and "job" not in tables:
        raise DatabaseError(f"{path} is not a queuectl database (it holds other tables: "
                            f"{', '.join(sorted(tables)[:5])}); nothing was changed")


def _check_header(path: Path) -> None:
    """Catch a truncated file before SQLite trips over it (O(1): the header only).

    Damage inside pages is found when a page is read, and reported as damage
    by `describe_db_error`; nothing is ever written to repair it behind the
    user's back.
    """
    with open(path, "rb") as fh:
        header = fh.read(100)
    if len(header) == 0:
        return  # created empty, schema not yet written
    if len(header) < 100:
        raise DatabaseError(f"{path} is damaged: truncated to {len(header)} bytes")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise DatabaseError(f"{path} is damaged: impossible page size {page_size}")
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]  # the size field is trusted only then
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        return  # in use: a checkpoint may be growing the file right now
    size = path.stat().st_size
    if valid and pages and size < pages * page_size:
        raise DatabaseError(
            f"{path} is damaged: truncated ({size} bytes, the header says "
            f"{pages * page_size}); restore it from a backup")
