"""Version 5: schedules, dependencies, unique keys, retry rules, finish hooks.
New columns are NULL for existing jobs (none of it applies to them)."""

from __future__ import annotations

from queuectl_tui.engine.storage import models
from queuectl_tui.engine.storage.migrations.alter import add_missing_columns
from queuectl_tui.engine.storage.opened import Opened

COLUMNS = (("job", "schedule", "VARCHAR(64)"), ("job", "schedule_tick", "{real}"),
           ("job", "unique_key", "VARCHAR(255)"), ("job", "unique_for", "{real}"),
           ("job", "no_retry_on", "VARCHAR(255)"), ("queue", "finish_hook", "TEXT"))


def migrate(opened: Opened) -> None:
    add_missing_columns(opened, COLUMNS)
    opened.db.create_tables([models.Dependency, models.UniqueLock, models.Schedule,
                             models.HookRun], safe=True)
    opened.backend.create_extra_indexes(with_v9=False)  # their columns come with v9
