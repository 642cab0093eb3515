"""Blocked jobs that nothing will release: settle them.

Jobs are released or cancelled in the transaction that records their
dependency's outcome (engine/dependencies.py); databases written by older
versions may still hold blocked jobs that a PostgreSQL race missed. Every pool
looks through the blocked jobs a batch at a time (Queue.release_stuck): first
soon after it starts, then every EVERY_S, going on at once while a full batch
came back. A round is one index range read and one dependency read when
nothing is stuck; pools that sweep at once are settled by row locks (the same
job is moved once).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Callable

from queuectl_tui.errors import QueuectlError
from queuectl_tui.workers.pool_log import PoolLog
from queuectl_tui.workers.services.base import Service

if TYPE_CHECKING:
    from queuectl_tui.engine import Queue

# Between sweeps; QUEUECTL_UNBLOCK_EVERY (seconds) for tests, 0 for none (a test of
# the normal path, which the sweep would otherwise mend behind its back).
EVERY_S = float(os.environ.get("QUEUECTL_UNBLOCK_EVERY", "60"))
FIRST_S = 2.0  # after the pool starts: let the workers start first
SOON_S = 0.5  # between batches while a sweep is under way


class Unblocker(Service):
    name = "unblocker"
    every = EVERY_S
    first = min(FIRST_S, EVERY_S)
    survives = (QueuectlError,)

    def __init__(self, queue: Queue, events: PoolLog,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(queue, events, clock)
        self.after_seq = 0  # where the sweep under way goes on

    def round(self, now: float) -> None:
        if EVERY_S <= 0:
            return
        moved, self.after_seq = self.queue.release_stuck(self.after_seq)
        if self.after_seq:
            self.next_turn = now + SOON_S
        for job_id, state in moved:
            self.events.note(
                f"job {job_id} was blocked with nothing left to wait for: {state} now"
                if state == "pending" else
                f"job {job_id} was blocked for a dependency that had ended: {state} now")
