"""Version 4: named queues. Every existing job lands in `default` (a column
default: no row is rewritten, so this is instant on a big table), the claim
and due indexes become per queue, and finished jobs get an index by finish
time for retention."""

from __future__ import annotations

import time

from queuectl_tui.engine.storage import models
from queuectl_tui.engine.storage.migrations.alter import add_missing_columns
from queuectl_tui.engine.storage.opened import Opened


def migrate(opened: Opened) -> None:
    add_missing_columns(opened, (("job", "queue", "VARCHAR(32) NOT NULL DEFAULT 'default'"),
                                 ("worker", "queues", "TEXT")))
    opened.db.create_tables([models.NamedQueue], safe=True)
    models.NamedQueue.insert(name="default", created_at=time.time()).on_conflict_ignore().execute()
    opened.backend.drop_old_indexes()
