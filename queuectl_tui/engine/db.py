"""Open a database from a path or URL: pragmas, permissions, schema version, migrations.

Where the database is: `--db`, else `$QUEUECTL_DB`, else the user data directory.
A new SQLite file is created with mode 0600 (SQLite gives its -wal and -shm
files the same mode), and an existing file is checked to be a database before
anything is written to it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlparse

import peewee as pw

from queuectl_tui.engine import location, models
from queuectl_tui.engine.backends import Backend, backend_for
from queuectl_tui.engine.location import default_path, is_postgres_url, resolve_target
from queuectl_tui.engine.writer_lock import WriterLock
from queuectl_tui.errors import DatabaseError, NoDatabase

SCHEMA_VERSION = 7
CREATE_HINT = ("a command that writes creates it (queuectl enqueue …, queuectl worker start), "
               "or pass --db / set QUEUECTL_DB to the right one")
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = float(os.environ.get("QUEUECTL_BUSY_TIMEOUT", "10"))
OPEN_RETRY_S = (0.05, 0.1, 0.2, 0.4, 0.8, None)  # waits between tries; None: last try
LOCK_SLICE_MS = 100  # a write that may be given up waits for the lock in slices this long


class Unreachable(DatabaseError):
    """The database server cannot be reached (refused, unknown host, dropped):
    a face that stays open tries again later rather than giving up."""


class GaveUp(DatabaseError):
    """A write stopped waiting for a lock because a person asked it to: nothing
    of it was written."""


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
            opened.identity = _identity(target)
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
            if delay is None or waited_out or not _is_busy(exc):
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


def interrupt(connection: Any) -> None:
    """Stop what a PostgreSQL connection of another thread is running now (a
    cancel request: its transaction rolls back). A SQLite write waiting for the
    lock is given up through `Opened.give_up_when` instead."""
    cancel = getattr(connection, "cancel", None)
    if cancel is not None:
        try:
            cancel()
        except Exception:  # noqa: BLE001 - the driver's own errors: nothing left to stop
            pass


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


def _identity(target: str) -> tuple[int, int] | None:
    if is_postgres_url(target):
        return None
    st = os.stat(Path(target).expanduser())
    return (st.st_dev, st.st_ino)


def _open_sqlite(target: str, *, create: bool) -> tuple[pw.Database, Path]:
    path = Path(target).expanduser()
    _check_or_create_sqlite_file(path, create=create)
    db = SqliteDatabase(
        str(path),
        # FULL until told otherwise: see Queue.__init__ for who may relax it.
        pragmas={"journal_mode": "wal", "synchronous": "FULL", "foreign_keys": 1},
        timeout=BUSY_TIMEOUT_S,
        lock_type="IMMEDIATE",  # every write transaction takes the write lock up front
        check_same_thread=False,
    )
    return db, path.with_name(path.name + ".logs")


class SqliteDatabase(pw.SqliteDatabase):
    """Peewee's, with write transactions ordered by the writers' `flock`
    (engine/writer_lock.py): a waiting writer is woken by the commit it waits
    for instead of sleeping through SQLite's busy handler."""

    def init(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().init(database, *args, **kwargs)
        self.writer_lock = WriterLock(f"{database}.lock")
        self.give_up = threading.local()  # .check: see Opened.give_up_when

    def begin(self, lock_type: str | None = None) -> None:
        writes = (lock_type or self._lock_type or "").upper() in ("IMMEDIATE", "EXCLUSIVE")
        if writes:
            self.writer_lock.acquire()
        try:
            check = getattr(self.give_up, "check", None) if writes else None
            if check is None:
                super().begin(lock_type)
            else:
                self._begin_unless(check, lock_type)
        except BaseException:
            self.writer_lock.release()
            raise

    def _begin_unless(self, check: Callable[[], bool], lock_type: str | None) -> None:
        """BEGIN, waiting for the write lock in slices of LOCK_SLICE_MS, each
        followed by a look at `check`, up to the usual busy timeout in all."""
        conn = self.connection()
        conn.execute(f"PRAGMA busy_timeout = {LOCK_SLICE_MS}")
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        try:
            while True:
                try:
                    super().begin(lock_type)
                    return
                except pw.OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() >= deadline:
                        raise
                if check():
                    raise GaveUp(f"gave up waiting for the lock on {self.database}; "
                                 "nothing was changed")
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.writer_lock.release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.writer_lock.release()


def _check_or_create_sqlite_file(path: Path, *, create: bool) -> None:
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


def _open_postgres(url: str, connect_timeout: int | None = None) -> tuple[pw.Database, Path]:
    parsed = urlparse(url)
    # The query's libpq parameters (sslmode, password, connect_timeout, ...) go
    # to the driver as they are, after the URL's own parts.
    options = {key: value for key, value in parse_qsl(parsed.query)}
    if connect_timeout is not None and "connect_timeout" not in options \
            and not os.environ.get("PGCONNECT_TIMEOUT"):
        options["connect_timeout"] = str(connect_timeout)  # every reconnect too
    db = pw.PostgresqlDatabase(
        unquote(parsed.path.lstrip("/")) or "postgres",
        **{"user": unquote(parsed.username) if parsed.username else None,
           "password": unquote(parsed.password) if parsed.password else None,
           "host": parsed.hostname or None, "port": parsed.port or None, **options},
    )
    name = (parsed.hostname or "local") + "-" + (parsed.path.lstrip("/") or "postgres")
    return db, default_path().parent / "pg-logs" / name


def ensure_schema(opened: Opened, *, create: bool = True) -> None:
    """Create the tables on first use; migrate an older schema; refuse a newer one,
    and refuse a database that holds someone else's tables.

    A current schema is only read: no write lock, so opening never waits behind
    a writer (a bulk enqueue, a worker's commit) and readers answer at once.
    """
    if _current_version(opened) == SCHEMA_VERSION:
        return
    db = opened.db
    with db.atomic():
        opened.backend.schema_lock()
        if not db.table_exists("meta"):
            tables = set(db.get_tables())
            if tables and "job" not in tables:  # version 0 had `job` but no `meta`
                raise DatabaseError(
                    f"{redact(opened.target)} is not a queuectl database (it holds other "
                    f"tables: {', '.join(sorted(tables)[:5])}); nothing was changed")
            if not tables and not create:
                raise NoDatabase(f"{redact(opened.target)} has no queue yet; {CREATE_HINT}")
            if not tables:  # a new database: today's schema at once
                db.create_tables(models.MODELS, safe=True)
                opened.backend.create_extra_indexes()
                models.NamedQueue.insert(name="default", created_at=time.time()).execute()
                models.Meta.insert(key="schema_version", value=str(SCHEMA_VERSION)).execute()
                return
            db.create_tables([models.Meta])  # version 0: every migration from the first
        row = models.Meta.get_or_none(models.Meta.key == "schema_version")
        version = _schema_version(row.value if row else "0", opened.target)
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"database schema v{version} is newer than this queuectl understands "
                f"(v{SCHEMA_VERSION}): upgrade queuectl")
        if version < SCHEMA_VERSION:
            _refuse_with_older_workers(opened, version)
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step](opened)
        if version < SCHEMA_VERSION:
            models.Meta.insert(key="schema_version", value=str(SCHEMA_VERSION)).on_conflict(
                conflict_target=[models.Meta.key],
                update={models.Meta.value: str(SCHEMA_VERSION)}).execute()


def schema_moved(opened: Opened) -> str | None:
    """Why this process must stop using the database, if a newer queuectl has
    migrated it since it was opened (workers and pools ask every second and
    before each claim: an old worker on a new schema runs with wrong queries)."""
    version = _current_version(opened)
    if version is None or version <= SCHEMA_VERSION:
        return None
    return (f"the database was migrated to schema v{version} by a newer queuectl; this "
            f"one understands v{SCHEMA_VERSION}: start the pool again with the new queuectl")


def _refuse_with_older_workers(opened: Opened, version: int) -> None:
    """A migration under live workers of an older queuectl would leave them
    running queries of the old schema: refuse it, naming them. Workers record
    the schema they were built for (v7 on); a worker row without one is older."""
    db = opened.db
    if not db.table_exists("worker"):
        return
    columns = {c.name for c in db.get_columns("worker")}
    built = "schema_version" if "schema_version" in columns else "NULL"
    p = db.param
    lease = db.execute_sql(f"SELECT value FROM setting WHERE key = {p}",
                           ("lease-seconds",)).fetchone() if db.table_exists("setting") else None
    lease_s = float(lease[0]) if lease and lease[0].replace(".", "", 1).isdigit() else 10.0
    older = db.execute_sql(
        f"SELECT host, pid FROM worker WHERE state IN ('idle', 'busy', 'stopping') "
        f"AND heartbeat_at >= {p} AND COALESCE({built}, 0) < {p} ORDER BY host, pid",
        (time.time() - lease_s, SCHEMA_VERSION)).fetchall()
    if older:
        where = ", ".join(f"pid {pid} on {host}" for host, pid in older[:5])
        raise DatabaseError(
            f"{redact(opened.target)} has schema v{version} and {len(older)} live worker(s) "
            f"of an older queuectl ({where}): stop them (`queuectl worker stop` with the "
            f"queuectl that started them), then run this again; nothing was changed")


def _current_version(opened: Opened) -> int | None:
    """The stored schema version, read without taking the write lock; None if
    there is none yet (or it is not a number: the locked path says why)."""
    try:
        row = opened.db.execute_sql(
            f"SELECT value FROM meta WHERE key = {opened.db.param}", ("schema_version",)
        ).fetchone()
    except pw.DatabaseError:  # no meta table yet (a new or very old database)
        if opened.db.in_transaction() or opened.backend.name == "postgresql":
            opened.db.rollback()  # PostgreSQL: a failed statement spoils its transaction
        return None
    text = row[0] if row else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 6 else None


def _schema_version(text: str, target: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) < 6):
        raise DatabaseError(f"{redact(target)} has a schema version that is not a number "
                            f"({text[:20]!r}): damaged, or not a queuectl database")
    return int(text)


def _migrate_0_to_1(opened: Opened) -> None:
    """Version 0 had no meta row: create whatever tables are missing (the partial
    indexes come with the last step: they name columns of later versions)."""
    opened.db.create_tables(models.MODELS, safe=True)


def _migrate_1_to_2(opened: Opened) -> None:
    """Version 2 added the partial index `job_due` (idle workers' next wake-up);
    version 4 replaced it with a per-queue one, created by its own step."""


V3_COLUMNS = (("job", "cwd", "TEXT"), ("job", "env", "TEXT"),
              ("job", "cancel_requested_at", "{real}"), ("job", "cancel_grace", "{real}"),
              ("job", "batch", "VARCHAR(32)"), ("job", "runs", "INTEGER NOT NULL DEFAULT 0"),
              ("worker", "stop_grace", "{real}"))


def _migrate_2_to_3(opened: Opened) -> None:
    """Version 3: a job's directory and environment, cancelling a running job,
    attempt records and staged bulk enqueues. Existing jobs keep every field;
    their new columns are NULL (run where the worker runs, nothing to cancel)."""
    real = "DOUBLE PRECISION" if opened.backend.name == "postgresql" else "REAL"
    for table, name, kind in V3_COLUMNS:
        if name not in {c.name for c in opened.db.get_columns(table)}:
            opened.db.execute_sql(
                f"ALTER TABLE {table} ADD COLUMN {name} {kind.format(real=real)}")
            if name == "runs":  # the runs so far are at least those of this series
                opened.db.execute_sql("UPDATE job SET runs = attempts")
    opened.db.create_tables([models.Attempt, models.Batch], safe=True)


def _migrate_3_to_4(opened: Opened) -> None:
    """Version 4: named queues. Every existing job lands in `default` (a column
    default: no row is rewritten, so this is instant on a big table), the claim
    and due indexes become per queue, and finished jobs get an index by finish
    time for retention."""
    db = opened.db
    columns = {c.name for c in db.get_columns("job")}
    if "queue" not in columns:
        db.execute_sql("ALTER TABLE job ADD COLUMN queue VARCHAR(32) NOT NULL DEFAULT 'default'")
    if "queues" not in {c.name for c in db.get_columns("worker")}:
        db.execute_sql("ALTER TABLE worker ADD COLUMN queues TEXT")
    db.create_tables([models.NamedQueue], safe=True)
    models.NamedQueue.insert(name="default", created_at=time.time()).on_conflict_ignore().execute()
    opened.backend.drop_old_indexes()


V5_COLUMNS = (("job", "schedule", "VARCHAR(64)"), ("job", "schedule_tick", "{real}"),
              ("job", "unique_key", "VARCHAR(255)"), ("job", "unique_for", "{real}"),
              ("job", "no_retry_on", "VARCHAR(255)"), ("queue", "finish_hook", "TEXT"))


def _migrate_4_to_5(opened: Opened) -> None:
    """Version 5: schedules, dependencies, unique keys, retry rules, finish hooks.
    New columns are NULL for existing jobs (none of it applies to them)."""
    real = "DOUBLE PRECISION" if opened.backend.name == "postgresql" else "REAL"
    for table, name, kind in V5_COLUMNS:
        if name not in {c.name for c in opened.db.get_columns(table)}:
            opened.db.execute_sql(
                f"ALTER TABLE {table} ADD COLUMN {name} {kind.format(real=real)}")
    opened.db.create_tables([models.Dependency, models.UniqueLock, models.Schedule,
                             models.HookRun], safe=True)
    opened.backend.create_extra_indexes()


def _migrate_5_to_6(opened: Opened) -> None:
    """Version 6: bulk enqueues with generated ids stage in a table of their own
    (engine/batches.py). Batches staged in `job` by an older release still publish."""
    opened.db.create_tables([models.StagedJob], safe=True)


def _migrate_6_to_7(opened: Opened) -> None:
    """Version 7: each worker records the schema it was built for, so a later
    migration can see live workers of an older queuectl (and refuse)."""
    if "schema_version" not in {c.name for c in opened.db.get_columns("worker")}:
        opened.db.execute_sql("ALTER TABLE worker ADD COLUMN schema_version INTEGER")


# MIGRATIONS[n] takes a database from version n to n + 1.
MIGRATIONS = {0: _migrate_0_to_1, 1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4,
              4: _migrate_4_to_5, 5: _migrate_5_to_6, 6: _migrate_6_to_7}


def describe_db_error(exc: Exception, target: str) -> str:
    """Turn a driver error into one line a person can act on."""
    raw, target = target, redact(target)
    # On SQLITE_FULL/IOERR SQLite rolls back by itself; peewee's own rollback then
    # fails with "no transaction is active", hiding the cause: report the cause.
    while "no transaction is active" in str(exc) and exc.__context__ is not None:
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
    if "unable to open" in low:
        return f"cannot open database {target}: {text}"
    if "disk" in low and "full" in low:
        return f"disk full while writing {target}: nothing was changed"
    if "could not connect" in low or "connection refused" in low or "does not exist" in low \
            or "could not translate host" in low or "authentication failed" in low:
        return f"cannot connect to {target}: {text.splitlines()[0]}"
    return f"database error on {target}: {text.splitlines()[0] if text else text}"


def redact(target: str) -> str:
    """A URL fit to print: every secret replaced by *** (location.redact)."""
    return location.redact(target)


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def is_sqlite_error(exc: BaseException) -> bool:
    return isinstance(exc, (sqlite3.Error, pw.DatabaseError))
