"""The backends, one module per database (`sqlite.py`, `postgres.py`) behind
the contract in `base.py`; `backend_for` picks the one a database needs."""

from __future__ import annotations

import peewee as pw

from queuectl_tui.engine.storage.backends.base import Backend
from queuectl_tui.engine.storage.backends.postgres import PostgresBackend
from queuectl_tui.engine.storage.backends.sqlite import SqliteBackend


def backend_for(db: pw.Database) -> Backend:
    if isinstance(db, pw.PostgresqlDatabase):
        return PostgresBackend(db)
    return SqliteBackend(db)
