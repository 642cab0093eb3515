"""The database trouble a pool rides out, named in one place.

A pool outlives a locked, full or briefly unreachable database: its services
and workers catch these errors, drop a connection that may be broken and try
again later. Every `except` of the workers' side names one of the tuples
below, so what counts as trouble is decided here alone.
"""

from __future__ import annotations

from typing import Any

from queuectl_tui.engine import StorageError, StorageUnavailable

# Any failure of the database or its connection: a background turn only tries later.
DB_TROUBLE: tuple[type[Exception], ...] = (StorageError,)
# A worker's own writes and reads: what may pass if it waits (locked, unreachable).
DB_BUSY: tuple[type[Exception], ...] = (StorageUnavailable,)


def first_line(exc: BaseException) -> str:
    """What an error says, in one line for the pool's log (its type if nothing)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def drop_connection(db: Any) -> None:
    """Close a connection that may be broken, so its next use opens a fresh one
    (never in the middle of a transaction: that one is its owner's to end)."""
    if not db.in_transaction():
        db.close()
