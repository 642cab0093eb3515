"""Version 5: schedules, dependencies, unique keys, retry rules, finish hooks.
New columns are NULL for existing jobs (none of it applies to them)."""

from __future__ import annotations

from queuectl_tui.engine.storage import models
from queuectl_tui.engine.storage.opened import Opened

COLUMNS = (("job", "schedule", "VARCHAR(64)"), ("job", "schedule_tick", "{real}"),
           ("job", "unique_key", "VARCHAR(255)"), ("job", "unique_for", "{real}"),
           ("job", "no_retry_on", "VARCHAR(255)"), ("queue", "finish_hook", "TEXT"))


def migrate(opened: Opened) -> None:
    real = "DOUBLE PRECISION" if opened.backend.name == "postgresql" else "REAL"
    for table, name, kind in COLUMNS:
        if name not in {c.name for c in opened.db.get_columns(table)}:
            opened.db.execute_sql(
                f"ALTER TABLE {table} ADD COLUMN {name} {kind.format(real=real)}")
    opened.db.create_tables([models.Dependency, models.UniqueLock, models.Schedule,
                             models.HookRun], safe=True)
    opened.backend.create_extra_indexes()
