"""Open a database from a path or URL: pragmas, permissions, schema version, migrations.

Where the database is: `--db`, else `$QUEUECTL_DB`, else the user data directory
(`location.py`). A SQLite file is checked, or created, before Peewee opens it
(`sqlite_file.py`); the schema is then brought to this queuectl's version
(`schema.py`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

import peewee as pw

from queuectl_tui.engine.storage import models, sqlite_file
from queuectl_tui.engine.storage.backends import backend_for
from queuectl_tui.engine.storage.databases import PostgresqlDatabase, SqliteDatabase
from queuectl_tui.engine.storage.errors import (BUSY_TIMEOUT_S, Unreachable,
                                                describe_db_error, is_busy)
from queuectl_tui.engine.storage.location import default_path, is_postgres_url, resolve_target
from queuectl_tui.engine.storage.opened import Opened
from queuectl_tui.engine.storage.schema import ensure_schema
from queuectl_tui.errors import DatabaseError

OPEN_RETRY_S = (0.05, 0.1, 0.2, 0.4, 0.8, None)  # waits between tries; None: last try


def open_database(db_arg: str | None = None, *, create: bool = True,
                  connect_timeout: int | None = None) -> Opened:
    """Open (and if needed create and migrate) the queue database.

    `connect_timeout` (seconds, PostgreSQL): give up a connection the server
    does not answer (one that silently drops packets) after that long, unless
    the URL or PGCONNECT_TIMEOUT sets its own. The console passes one; the CLI
    keeps libpq's default, as its URLs say."""
    target = resolve_target(db_arg)
    if is_postgres_url(target):
        db, log_dir = _open_postgres(target, connect_timeout)
    else:
        db, log_dir = _open_sqlite(target, create=create)
    models.database.initialize(db)
    opened = Opened(db=db, backend=backend_for(db), target=target, log_dir=log_dir)
    for delay in OPEN_RETRY_S:
        started = time.monotonic()
        try:
            db.connect(reuse_if_open=True)
            ensure_schema(opened, create=create)
            opened.identity = sqlite_file.identity(target)
            if opened.identity is not None:  # a later chdir must not make it look gone
                opened.path = os.path.abspath(os.path.expanduser(target))
            break
        except pw.OperationalError as exc:
            # Several processes opening a database at once (a pool starting, a
            # script, the console) can see SQLITE_BUSY without a busy wait, e.g.
            # while another connection sets up or tears down the WAL index. A
            # busy that came after the whole busy timeout is a real lock: say so
            # now, after the wait we report, not six waits later.
            waited_out = time.monotonic() - started >= BUSY_TIMEOUT_S / 2
            if delay is None or waited_out or not is_busy(exc):
                kind = Unreachable if is_postgres_url(target) and db.is_closed() \
                    else DatabaseError  # the server did not answer at all
                opened.close()
                raise kind(describe_db_error(exc, target)) from None
            opened.close()
            time.sleep(delay)
        except pw.DatabaseError as exc:
            opened.close()
            raise DatabaseError(describe_db_error(exc, target)) from None
    return opened


def _open_sqlite(target: str, *, create: bool) -> tuple[pw.Database, Path]:
    path = Path(target).expanduser()
    sqlite_file.check_or_create(path, create=create)
    db = SqliteDatabase(
        str(path),
        # FULL until told otherwise: see Queue.__init__ for who may relax it.
        pragmas={"journal_mode": "wal", "synchronous": "FULL", "foreign_keys": 1},
        timeout=BUSY_TIMEOUT_S,
        lock_type="IMMEDIATE",  # every write transaction takes the write lock up front
        check_same_thread=False,
    )
    return db, path.with_name(path.name + ".logs")


def _open_postgres(url: str, connect_timeout: int | None = None) -> tuple[pw.Database, Path]:
    parsed = urlparse(url)
    # The query's libpq parameters (sslmode, password, connect_timeout, ...) go
    # to the driver as they are, after the URL's own parts.
    options = {key: value for key, value in parse_qsl(parsed.query)}
    if connect_timeout is not None and "connect_timeout" not in options \
            and not os.environ.get("PGCONNECT_TIMEOUT"):
        options["connect_timeout"] = str(connect_timeout)  # every reconnect too
    db = PostgresqlDatabase(
        unquote(parsed.path.lstrip("/")) or "postgres",
        **{"user": unquote(parsed.username) if parsed.username else None,
           "password": unquote(parsed.password) if parsed.password else None,
           "host": parsed.hostname or None, "port": parsed.port or None, **options},
    )
    name = (parsed.hostname or "local") + "-" + (parsed.path.lstrip("/") or "postgres")
    return db, default_path().parent / "pg-logs" / name
