"""Version 7: each worker records the schema it was built for, so a later
migration can see live workers of an older queuectl (and refuse)."""

from __future__ import annotations

from queuectl_tui.engine.storage.opened import Opened


def migrate(opened: Opened) -> None:
    if "schema_version" not in {c.name for c in opened.db.get_columns("worker")}:
        opened.db.execute_sql("ALTER TABLE worker ADD COLUMN schema_version INTEGER")
