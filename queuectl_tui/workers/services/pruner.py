"""Retention: prune finished jobs a little at a time.

Every pool's supervisor runs one of these; the lease in engine/retention.py
lets only one of them (on any host) delete at a time. Each round deletes at
most MAX_BATCHES small batches and comes back sooner when it had to stop
early, so a backlog (retention shortened on a big database) drains steadily
without ever holding the write lock for long.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Callable

from queuectl_tui.workers.pool_log import PoolLog
from queuectl_tui.workers.services.base import Service

if TYPE_CHECKING:
    from queuectl_tui.engine import Queue

# Between rounds when nothing was left over; QUEUECTL_PRUNE_EVERY (seconds) for
# databases whose retention is measured in seconds (and for tests).
EVERY_S = float(os.environ.get("QUEUECTL_PRUNE_EVERY", "10"))
FIRST_S = 2.0  # after the pool starts: let the workers start first
SOON_S = 1.0  # between rounds while a backlog drains
SWEEP_EVERY_S = 300.0  # orphaned log files (another host pruned, a crash)
FIRST_SWEEP_S = 30.0
MAX_BATCHES = 10


class Pruner(Service):
    name = "pruner"
    every = EVERY_S
    first = min(FIRST_S, EVERY_S)

    def __init__(self, queue: Queue, events: PoolLog,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(queue, events, clock)
        self.owner = f"{queue.host}:{os.getpid()}"
        self.next_sweep = clock() + FIRST_SWEEP_S

    def round(self, now: float) -> None:
        if not self.queue.take_prune_lease(self.owner):
            return
        pruned, done = self.queue.prune(max_batches=MAX_BATCHES)
        self.queue.lapse_unique_keys()
        if not done:
            self.next_turn = now + SOON_S
        if pruned.total:
            self.events.note("pruned " + describe(pruned.counts) + " past their retention")
        if now >= self.next_sweep:
            self.next_sweep = now + SWEEP_EVERY_S
            self.queue.sweep_logs()


def describe(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    parts = ", ".join(f"{state} {n}" for state, n in counts.items())
    return f"{total} job{'s' if total != 1 else ''}" + (f" ({parts})" if parts else "")
