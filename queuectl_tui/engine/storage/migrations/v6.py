"""Version 6: bulk enqueues with generated ids stage in a table of their own
(engine/batches.py). Batches staged in `job` by an older release still publish."""

from __future__ import annotations

from queuectl_tui.engine.storage import models
from queuectl_tui.engine.storage.opened import Opened


def migrate(opened: Opened) -> None:
    opened.db.create_tables([models.StagedJob], safe=True)
