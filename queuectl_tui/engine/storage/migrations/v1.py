"""Version 1: the first with a schema version. Version 0 had no meta row:
create whatever tables are missing (the partial indexes come with a later
step: they name columns of later versions)."""

from __future__ import annotations

from queuectl_tui.engine.storage import models
from queuectl_tui.engine.storage.opened import Opened


def migrate(opened: Opened) -> None:
    opened.db.create_tables(models.MODELS, safe=True)
