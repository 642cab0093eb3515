"""A database failure leaves the storage layer as the engine's `StorageError`
(what a face catches) and still as Peewee's own class (what the engine catches
where it decides on it): the same exception, message and driver error as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import peewee as pw
import pytest

from queuectl_tui.engine import (StorageError, StorageUnavailable, describe_db_error,
                                 is_postgres_url, is_storage_error)
from queuectl_tui.engine.storage.opening import open_database


@pytest.fixture
def opened(db: str):
    opened = open_database(db)
    yield opened
    opened.close()


def test_a_locked_sqlite_file_is_a_storage_error_and_peewees(db_path: Path) -> None:
    opened = open_database(str(db_path))
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's write, holding the lock
        opened.db.execute_sql("PRAGMA busy_timeout = 20")
        with pytest.raises(StorageError) as caught:
            with opened.db.atomic():
                opened.db.execute_sql("DELETE FROM job")
        exc = caught.value
        assert isinstance(exc, pw.OperationalError)
        assert isinstance(exc, StorageUnavailable)  # a worker says so and tries again
        assert type(exc).__name__ == "OperationalError"  # log lines that name it read as before
        assert isinstance(exc.orig, sqlite3.OperationalError)
        assert "is locked by another process" in describe_db_error(exc, str(db_path))
        assert not opened.db.writer_lock.held
    finally:
        holder.close()
        opened.close()


def test_a_broken_constraint_is_a_storage_error_and_peewees(opened) -> None:
    with pytest.raises(pw.IntegrityError) as caught:
        with opened.db.atomic():
            opened.db.execute_sql("INSERT INTO meta (key, value) VALUES ('schema_version', 'x')")
    assert isinstance(caught.value, StorageError)
    assert not isinstance(caught.value, StorageUnavailable)  # waiting will not mend it
    assert type(caught.value).__name__ == "IntegrityError"


def test_a_statement_peewee_rejects_is_a_storage_error(opened) -> None:
    with pytest.raises(StorageError) as caught:
        opened.db.execute_sql("SELECT no_such_column FROM job")
    assert isinstance(caught.value, pw.DatabaseError)
    if opened.backend.name == "postgresql":
        opened.db.rollback()  # a failed statement spoils PostgreSQL's transaction


def _terminate(url: str, pid: int) -> None:
    import psycopg2
    admin = psycopg2.connect(url)
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        admin.close()


def test_a_terminated_postgresql_backend_is_a_storage_error_and_peewees(opened, db) -> None:
    if not is_postgres_url(db):
        pytest.skip("PostgreSQL only: nothing can terminate a SQLite connection")
    pid = opened.db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    _terminate(db, pid)
    with pytest.raises(StorageUnavailable) as caught:
        opened.db.execute_sql("SELECT 1").fetchone()
    assert isinstance(caught.value, (pw.OperationalError, pw.InterfaceError))
    assert opened.connection_lost()
    with pytest.raises(pw.InterfaceError) as again:  # "connection already closed"
        opened.db.execute_sql("SELECT 1")
    assert isinstance(again.value, StorageUnavailable)
    opened.reconnect()
    assert opened.db.execute_sql("SELECT 1").fetchone() == (1,)


def test_a_wake_up_wait_on_a_terminated_backend_is_a_storage_error(opened, db) -> None:
    if not is_postgres_url(db):
        pytest.skip("PostgreSQL only: SQLite's wake-up watches a file")
    opened.backend.listen()
    pid = opened.db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    _terminate(db, pid)
    with pytest.raises(StorageUnavailable) as caught:
        for _ in range(50):  # the termination notice arrives within one wait
            opened.backend.wait_for_change(0.2, lambda _s: None)
    assert isinstance(caught.value, pw.OperationalError)


@pytest.mark.parametrize("exc, expected", [
    (sqlite3.OperationalError("disk I/O error"), True),  # a row read after the statement ran
    (pw.InterfaceError("connection already closed"), True),
    (pw.OperationalError("database is locked"), True),
    (ValueError("not a database's"), False),
    (OSError(28, "No space left on device"), False),
])
def test_a_face_can_tell_a_storage_error_without_the_librarys_names(exc, expected) -> None:
    assert is_storage_error(exc) is expected
