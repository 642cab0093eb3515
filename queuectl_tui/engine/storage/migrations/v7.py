"""Version 7: each worker records the schema it was built for, so a later
migration can see live workers of an older queuectl (and refuse)."""

from __future__ import annotations

from queuectl_tui.engine.storage.migrations.alter import add_missing_columns
from queuectl_tui.engine.storage.opened import Opened


def migrate(opened: Opened) -> None:
    add_missing_columns(opened, (("worker", "schema_version", "INTEGER"),))
