"""One module per schema version, each holding the step that brings a database
to that version from the one before (`schema.py` runs them in order).

A step leaves alone a column or table already there: step 1 creates missing
tables from today's models, so later steps may find theirs in place.
"""

from __future__ import annotations

from typing import Callable

from queuectl_tui.engine.storage.migrations import v1, v2, v3, v4, v5, v6, v7, v8, v9
from queuectl_tui.engine.storage.opened import Opened

# MIGRATIONS[n] takes a database from version n to n + 1.
MIGRATIONS: dict[int, Callable[[Opened], None]] = {
    0: v1.migrate, 1: v2.migrate, 2: v3.migrate, 3: v4.migrate, 4: v5.migrate,
    5: v6.migrate, 6: v7.migrate, 7: v8.migrate, 8: v9.migrate}
