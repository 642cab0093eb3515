"""Adding columns the way every step does: only those not there yet, so a
step can run on a database that step 1 created from today's models."""

from __future__ import annotations

from queuectl_tui.engine.storage.opened import Opened


def add_missing_columns(opened: Opened, columns: tuple[tuple[str, str, str], ...]) -> set[str]:
    """Add each (table, name, type) not yet in its table; `{real}` in a type
    is the backend's float type. Returns the names added."""
    real = "DOUBLE PRECISION" if opened.backend.name == "postgresql" else "REAL"
    added = set()
    for table, name, kind in columns:
        if name not in {c.name for c in opened.db.get_columns(table)}:
            opened.db.execute_sql(
                f"ALTER TABLE {table} ADD COLUMN {name} {kind.format(real=real)}")
            added.add(name)
    return added
