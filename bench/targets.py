"""Where a queuectl benchmark database lives: SQLite files or PostgreSQL databases.

The benchmark only talks to a database through a Target: it makes a fresh,
empty queue database per run (`new`), fills it with history quickly (`prefill`),
runs small read-only SQL (`query`) and throws it away (`drop`). Everything
else goes through queuectl itself (its engine API or its CLI with `--db`).
Add a backend by subclassing Target and registering it in `target_for`.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse


class Target:
    name = "?"
    param = "?"

    def new(self, label: str) -> str:
        """Create an empty queuectl database; returns the `--db` value for it."""
        raise NotImplementedError

    def drop(self, db: str) -> None:
        raise NotImplementedError

    def connect(self, db: str) -> Any:
        raise NotImplementedError

    def query(self, db: str, sql: str, params: tuple = ()) -> list[tuple]:
        conn = self.connect(db)
        try:
            cur = conn.cursor()
            cur.execute(sql.replace("?", self.param), params)
            return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def prefill(self, db: str, completed: int, backlog: int) -> None:
        """Add `completed` finished jobs (3 events each) and `backlog` pending jobs
        scheduled a day ahead, as fast as the database allows (no queuectl calls)."""
        raise NotImplementedError

    @staticmethod
    def init_schema(db: str) -> None:
        # queuectl creates its own schema on first open; do it through the engine.
        from queuectl_tui.engine.storage.opening import open_database
        open_database(db).close()


class SqliteTarget(Target):
    name = "sqlite"
    param = "?"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def new(self, label: str) -> str:
        path = self.workdir / f"{label}-{uuid.uuid4().hex[:6]}.db"
        self.init_schema(str(path))
        return str(path)

    def drop(self, db: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(db + suffix)
            except FileNotFoundError:
                pass
        shutil.rmtree(db + ".logs", ignore_errors=True)

    def connect(self, db: str) -> Any:
        import sqlite3
        conn = sqlite3.connect(db, timeout=30)
        conn.isolation_level = None
        return conn

    def prefill(self, db: str, completed: int, backlog: int) -> None:
        conn = self.connect(db)
        now = time.time()
        try:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN")
            conn.execute(_SQLITE_SERIES + """
                INSERT INTO job (id, command, state, prev_state, attempts, max_retries,
                                 priority, run_at, timeout, created_at, updated_at,
                                 started_at, finished_at, exit_code, worker_id,
                                 stdout_tail, stderr_tail)
                SELECT 'hist-' || x, 'true', 'completed', 'pending', 1, 3, 0,
                       ?1 - 86400 + x * 0.01, NULL, ?1 - 86400 + x * 0.01,
                       ?1 - 86400 + x * 0.01 + 0.005, ?1 - 86400 + x * 0.01 + 0.001,
                       ?1 - 86400 + x * 0.01 + 0.005, 0, 'bench-old', '', ''
                FROM series""", (now, completed))
            for frm, to, off in ((None, "pending", 0.0), ("pending", "processing", 0.001),
                                 ("processing", "completed", 0.005)):
                conn.execute(_SQLITE_SERIES + """
                    INSERT INTO event (job_id, from_state, to_state, attempt, exit_code,
                                       worker_id, at)
                    SELECT 'hist-' || x, ?3, ?4, 1, NULL, 'bench-old',
                           ?1 - 86400 + x * 0.01 + ?5
                    FROM series""", (now, completed, frm, to, off))
            conn.execute(_SQLITE_SERIES + """
                INSERT INTO job (id, command, state, attempts, max_retries, priority, run_at,
                                 created_at, updated_at)
                SELECT 'backlog-' || x, 'true', 'pending', 0, 3, 0, ?1 + 86400 + x,
                       ?1, ?1 FROM series""", (now, backlog))
            conn.execute(_SQLITE_SERIES + """
                INSERT INTO event (job_id, from_state, to_state, attempt, at)
                SELECT 'backlog-' || x, NULL, 'pending', 0, ?1 FROM series""", (now, backlog))
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


_SQLITE_SERIES = ("WITH RECURSIVE series(x) AS (SELECT 1 WHERE ?2 > 0 UNION ALL "
                  "SELECT x + 1 FROM series WHERE x < ?2) ")


class PostgresTarget(Target):
    """`--db postgresql://user@host/anything`: a fresh database per run on that server."""

    name = "postgresql"
    param = "%s"

    def __init__(self, url: str) -> None:
        self.url = urlparse(url)

    def _url(self, dbname: str) -> str:
        return urlunparse(self.url._replace(path="/" + dbname))

    def _admin(self) -> Any:
        import psycopg2
        conn = psycopg2.connect(self._url("postgres"))
        conn.autocommit = True
        return conn

    def new(self, label: str) -> str:
        name = f"qbench_{label.replace('-', '_')}_{uuid.uuid4().hex[:6]}"
        conn = self._admin()
        try:
            conn.cursor().execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        db = self._url(name)
        self.init_schema(db)
        return db

    def drop(self, db: str) -> None:
        name = urlparse(db).path.lstrip("/")
        conn = self._admin()
        try:
            conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def connect(self, db: str) -> Any:
        import psycopg2
        conn = psycopg2.connect(db)
        conn.autocommit = True
        return conn

    def prefill(self, db: str, completed: int, backlog: int) -> None:
        now = time.time()
        conn = self.connect(db)
        try:
            cur = conn.cursor()
            cur.execute("""
                INSERT INTO job (id, command, state, prev_state, attempts, max_retries,
                                 priority, run_at, timeout, created_at, updated_at,
                                 started_at, finished_at, exit_code, worker_id,
                                 stdout_tail, stderr_tail)
                SELECT 'hist-' || x, 'true', 'completed', 'pending', 1, 3, 0,
                       %(now)s - 86400 + x * 0.01, NULL, %(now)s - 86400 + x * 0.01,
                       %(now)s - 86400 + x * 0.01 + 0.005, %(now)s - 86400 + x * 0.01 + 0.001,
                       %(now)s - 86400 + x * 0.01 + 0.005, 0, 'bench-old', '', ''
                FROM generate_series(1, %(n)s) AS x""", {"now": now, "n": completed})
            for frm, to, off in ((None, "pending", 0.0), ("pending", "processing", 0.001),
                                 ("processing", "completed", 0.005)):
                cur.execute("""
                    INSERT INTO event (job_id, from_state, to_state, attempt, worker_id, at)
                    SELECT 'hist-' || x, %(frm)s, %(to)s, 1, 'bench-old',
                           %(now)s - 86400 + x * 0.01 + %(off)s
                    FROM generate_series(1, %(n)s) AS x""",
                            {"now": now, "n": completed, "frm": frm, "to": to, "off": off})
            cur.execute("""
                INSERT INTO job (id, command, state, attempts, max_retries, priority, run_at,
                                 created_at, updated_at)
                SELECT 'backlog-' || x, 'true', 'pending', 0, 3, 0, %(now)s + 86400 + x,
                       %(now)s, %(now)s FROM generate_series(1, %(n)s) AS x""",
                        {"now": now, "n": backlog})
            cur.execute("""
                INSERT INTO event (job_id, from_state, to_state, attempt, at)
                SELECT 'backlog-' || x, NULL, 'pending', 0, %(now)s
                FROM generate_series(1, %(n)s) AS x""", {"now": now, "n": backlog})
            cur.execute("ANALYZE")
        finally:
            conn.close()


def target_for(db: str | None, workdir: Path) -> Target:
    """`--db` of the benchmark: nothing (SQLite files in the work dir) or a postgresql:// URL."""
    if db and db.startswith(("postgresql://", "postgres://")):
        return PostgresTarget(db)
    if db:
        raise SystemExit(f"--db must be a postgresql:// URL (SQLite is the default): {db!r}")
    return SqliteTarget(workdir)
