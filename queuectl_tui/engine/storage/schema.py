"""The schema's version: create today's tables on a new database, bring an
older one up a step at a time (`migrations/`), refuse a newer one, and refuse
to migrate under live workers of an older queuectl."""

from __future__ import annotations

import time

import peewee as pw

from queuectl_tui.engine.storage import models
from queuectl_tui.engine.storage.errors import CREATE_HINT
from queuectl_tui.engine.storage.location import redact
from queuectl_tui.engine.storage.opened import Opened
from queuectl_tui.errors import DatabaseError, NoDatabase

SCHEMA_VERSION = 9


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
            _migrate(opened, version)


def _migrate(opened: Opened, version: int) -> None:
    """Run the steps from `version` up to today's, and record today's version.
    The steps' modules load only here: opening a current database (nearly
    every start) never pays for them."""
    from queuectl_tui.engine.storage.migrations import MIGRATIONS
    for step in range(version, SCHEMA_VERSION):
        MIGRATIONS[step](opened)
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
