"""The supervisor's stuck-job duty: settle blocked jobs that nothing will release.

Jobs are released or cancelled in the transaction that records their
dependency's outcome (engine/dependencies.py); databases written by older
versions may still hold blocked jobs that a PostgreSQL race missed. Every pool
looks through the blocked jobs a batch at a time (Queue.release_stuck): first
soon after it starts, then every EVERY_S, going on at once while a full batch
came back. A turn is one index range read and one dependency read when nothing
is stuck; pools that sweep at once are settled by row locks (the same job is
moved once).
"""

from __future__ import annotations

import os
import time
from typing import Callable

import peewee as pw

from queuectl_tui.engine.queue import Queue
from queuectl_tui.errors import QueuectlError

# Between sweeps; QUEUECTL_UNBLOCK_EVERY (seconds) for tests, 0 for none (a test of
# the normal path, which the sweep would otherwise mend behind its back).
EVERY_S = float(os.environ.get("QUEUECTL_UNBLOCK_EVERY", "60"))
FIRST_S = 2.0  # after the pool starts: let the workers start first
SOON_S = 0.5  # between batches while a sweep is under way


class Unblocker:
    def __init__(self, queue: Queue, log: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.log = log
        self.clock = clock
        self.next_turn = clock() + min(FIRST_S, EVERY_S)
        self.after_seq = 0  # where the sweep under way goes on

    def turn(self) -> list[tuple[str, str]]:
        """Called from the supervisor's loop; returns at once unless it is time.
        Database trouble is the rescuer's to report: here it only means later."""
        now = self.clock()
        if now < self.next_turn or EVERY_S <= 0:
            return []
        self.next_turn = now + EVERY_S
        try:
            moved, self.after_seq = self.queue.release_stuck(self.after_seq)
        except (pw.DatabaseError, pw.InterfaceError, QueuectlError):
            if not self.queue.db.in_transaction():
                self.queue.db.close()
            return []
        if self.after_seq:
            self.next_turn = now + SOON_S
        for job_id, state in moved:
            self.log(f"job {job_id} was blocked with nothing left to wait for: {state} now"
                     if state == "pending" else
                     f"job {job_id} was blocked for a dependency that had ended: {state} now")
        return moved
