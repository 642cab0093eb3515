from __future__ import annotations

import os
import random
import secrets
from pathlib import Path
from urllib.parse import urlparse

import pytest

from queuectl_tui.clock import FakeClock, Ids
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from queuectl_tui.workers.signals import LocalProcesses
from tests.helpers import WorkerPool

PG_URL = os.environ.get("QUEUECTL_TEST_PG")
REQUIRE_PG = os.environ.get("QUEUECTL_REQUIRE_PG") == "1"


def _no_postgres(reason: str) -> None:
    if REQUIRE_PG:
        pytest.fail(f"PostgreSQL is required here (QUEUECTL_REQUIRE_PG=1): {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def _pg_admin(url: str):
    import psycopg2
    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def pg_database():
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    if not PG_URL:
        _no_postgres("set QUEUECTL_TEST_PG=postgresql://user@host:port/db to run them")
    try:
        admin = _pg_admin(PG_URL)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        _no_postgres(f"cannot reach {PG_URL}: {str(exc).strip().splitlines()[0]}")
    name = f"queuectl_test_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield urlparse(PG_URL)._replace(path="/" + name).geturl()
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _reset_pg(url: str) -> None:
    conn = _pg_admin(url)
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path: Path, monkeypatch) -> str:
    """The database for one test: a new SQLite file, or a clean PostgreSQL schema."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    if request.param == "sqlite":
        return str(tmp_path / "queue.db")
    url = request.getfixturevalue("pg_database")
    _reset_pg(url)
    return url


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A SQLite file, for tests of SQLite itself (files, permissions, corruption)."""
    return tmp_path / "queue.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(db: str, clock: FakeClock):
    opened = open_database(db)
    yield Queue(opened, clock=clock, ids=Ids(random.Random(7)), host="testhost",
                processes=LocalProcesses())
    opened.close()


@pytest.fixture
def pools(db: str):
    """Start real worker pools with `pools(count)`; all are stopped at teardown."""
    started: list[WorkerPool] = []

    def start(count: int = 1, target: str | None = None, extra: tuple[str, ...] = (),
              **env: str) -> WorkerPool:
        pool = WorkerPool(target or db, count, extra, **env)
        started.append(pool)
        return pool

    yield start
    for pool in started:
        pool.close()
    _kill_processes_of(db)


def _kill_processes_of(db: str) -> None:
    """Whatever a failed test left running for this database (jobs inherit
    QUEUECTL_DB from their worker), so one failure cannot spill into the next."""
    import signal
    needle = f"QUEUECTL_DB={db}".encode()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    os.kill(int(entry), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue
