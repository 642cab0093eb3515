"""Where the database is, decided without importing any database code.

Kept apart from db.py so the CLI can choose before Peewee is imported: Peewee
imports the PostgreSQL driver (and with it ssl) whenever it is installed,
about 15 ms that a command on a local SQLite file should not pay.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def default_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "queuectl" / "queuectl.db"


def resolve_target(db_arg: str | None) -> str:
    """The database the user means: flag, then environment, then the default."""
    return db_arg or os.environ.get("QUEUECTL_DB") or str(default_path())


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def skip_postgres_driver(target: str) -> None:
    """For a SQLite target, make Peewee's optional `import psycopg2` find nothing.

    Only effective before Peewee is first imported, and only for this process.
    """
    if not is_postgres_url(target) and "peewee" not in sys.modules:
        for name in ("psycopg2", "psycopg"):
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]
