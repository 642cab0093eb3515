"""Checkpoints: fold SQLite's WAL back into the database file.

The workers of a pool leave WAL checkpoints to their supervisor (see
`leave_checkpoints` in the engine's backends), so no worker's commit waits
for one; a PASSIVE checkpoint every CHECKPOINT_EVERY_S never waits for a
reader or writer either. On PostgreSQL a round does nothing.
"""

from __future__ import annotations

from queuectl_tui.workers.services.base import Service

CHECKPOINT_EVERY_S = 0.2


class Checkpointer(Service):
    """Keeps the WAL short while the pool runs and while it stops: a long WAL
    slows every reader, and only this process checkpoints for the pool."""

    name = "checkpoint"
    every = CHECKPOINT_EVERY_S
    while_stopping = True

    def round(self, now: float) -> None:
        self.queue.backend.checkpoint()
