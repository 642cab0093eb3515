"""Version 3: a job's directory and environment, cancelling a running job,
attempt records and staged bulk enqueues. Existing jobs keep every field;
their new columns are NULL (run where the worker runs, nothing to cancel)."""

from __future__ import annotations

from queuectl_tui.engine.storage import models
from queuectl_tui.engine.storage.migrations.alter import add_missing_columns
from queuectl_tui.engine.storage.opened import Opened

COLUMNS = (("job", "cwd", "TEXT"), ("job", "env", "TEXT"),
           ("job", "cancel_requested_at", "{real}"), ("job", "cancel_grace", "{real}"),
           ("job", "batch", "VARCHAR(32)"), ("job", "runs", "INTEGER NOT NULL DEFAULT 0"),
           ("worker", "stop_grace", "{real}"))


def migrate(opened: Opened) -> None:
    if "runs" in add_missing_columns(opened, COLUMNS):
        # the runs so far are at least those of this series
        opened.db.execute_sql("UPDATE job SET runs = attempts")
    opened.db.create_tables([models.Attempt, models.Batch], safe=True)
