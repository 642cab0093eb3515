"""An idle SQLite worker's wake-up (SqliteBackend.wait_for_change over the WAL watch):
another process's commit wakes it; writes that commit nothing for it do not."""

from __future__ import annotations

import sqlite3
import threading
import time

import peewee as pw
import pytest

from queuectl_tui.engine.storage.backends.sqlite import SqliteBackend


@pytest.fixture
def wal_db(db_path):
    with sqlite3.connect(db_path) as setup:
        setup.execute("PRAGMA journal_mode=wal")
        setup.execute("CREATE TABLE t (x)")
    return db_path


def _listening(path) -> SqliteBackend:
    backend = SqliteBackend(pw.SqliteDatabase(str(path)))
    backend.listen()
    if backend._watch is None:
        pytest.skip("inotify is not available here")
    return backend


def _wait_until_changed(backend: SqliteBackend, within: float) -> bool:
    """Call wait_for_change in 0.1 s slices, as the worker does, until it says True."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if backend.wait_for_change(0.1, time.sleep):
            return True
    return False


def test_a_commit_by_another_connection_wakes_the_waiter(wal_db):
    backend = _listening(wal_db)
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(_wait_until_changed(backend, 30)))
    waiter.start()
    with sqlite3.connect(wal_db) as other:
        other.execute("INSERT INTO t VALUES (1)")
    waiter.join(60)
    assert woke == [True]


def test_own_commits_and_uncommitted_writes_do_not_count(wal_db):
    backend = _listening(wal_db)
    backend.db.execute_sql("INSERT INTO t VALUES (1)")  # our own commit: the WAL is written
    other = sqlite3.connect(wal_db, isolation_level=None)
    other.execute("PRAGMA cache_size=1")  # spill dirty pages to the WAL before the commit
    other.execute("BEGIN IMMEDIATE")
    other.executemany("INSERT INTO t VALUES (?)", ((str(i) * 200,) for i in range(2000)))
    # Slices covering every settle probe after those writes: none reports a change.
    assert not any(backend.wait_for_change(0.1, time.sleep) for _ in range(3))
    other.execute("COMMIT")
    assert _wait_until_changed(backend, 30)
    other.close()
