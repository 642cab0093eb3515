"""The supervisor's retention duty: prune finished jobs a little at a time.

Every pool's supervisor runs one of these; the lease in engine/retention.py
lets only one of them (on any host) delete at a time. Each turn deletes at
most MAX_BATCHES small batches and comes back sooner when it had to stop
early, so a backlog (retention shortened on a big database) drains steadily
without ever holding the write lock for long.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import peewee as pw

from queuectl_tui.engine.queue import Queue

# Between turns when nothing was left over; QUEUECTL_PRUNE_EVERY (seconds) for
# databases whose retention is measured in seconds (and for tests).
EVERY_S = float(os.environ.get("QUEUECTL_PRUNE_EVERY", "10"))
SOON_S = 1.0  # between turns while a backlog drains
SWEEP_EVERY_S = 300.0  # orphaned log files (another host pruned, a crash)
MAX_BATCHES = 10


class Pruner:
    def __init__(self, queue: Queue, log: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.log = log
        self.clock = clock
        self.owner = f"{queue.host}:{os.getpid()}"
        self.next_turn = clock() + min(2.0, EVERY_S)  # let the workers start first
        self.next_sweep = clock() + 30.0

    def turn(self) -> None:
        """Called from the supervisor's loop; returns at once unless it is time.
        Database trouble is the rescuer's to report: here it only means later."""
        now = self.clock()
        if now < self.next_turn:
            return
        self.next_turn = now + EVERY_S
        try:
            if not self.queue.take_prune_lease(self.owner):
                return
            pruned, done = self.queue.prune(max_batches=MAX_BATCHES)
            self.queue.lapse_unique_keys()
            if not done:
                self.next_turn = now + SOON_S
            if pruned.total:
                self.log("pruned " + describe(pruned.counts) + " past their retention")
            if now >= self.next_sweep:
                self.next_sweep = now + SWEEP_EVERY_S
                self.queue.sweep_logs()
        except (pw.DatabaseError, pw.InterfaceError):
            if not self.queue.db.in_transaction():
                self.queue.db.close()


def describe(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    parts = ", ".join(f"{state} {n}" for state, n in counts.items())
    return f"{total} job{'s' if total != 1 else ''}" + (f" ({parts})" if parts else "")
