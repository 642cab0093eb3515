"""The supervisor's schedule duty: enqueue due cron ticks (engine/schedules.py).

Every pool's supervisor calls `turn()` on each pass of its loop (every 0.1 s),
so a tick fires within a fraction of a second while any pool runs, on any host.
A turn is one read of the (small) schedule table when nothing is due; pools
racing for one tick are settled by the database: one conditional update wins.
"""

from __future__ import annotations

from typing import Callable

import peewee as pw

from queuectl_tui.engine import schedules
from queuectl_tui.engine.queue import Queue
from queuectl_tui.errors import QueuectlError


class Scheduler:
    def __init__(self, queue: Queue, log: Callable[[str], None]) -> None:
        self.queue = queue
        self.log = log

    def turn(self) -> list[tuple[str, list[str]]]:
        """Fire what is due; database trouble only means the next turn tries again
        (the rescuer reports it)."""
        try:
            fired = schedules.fire_due(self.queue)
        except (pw.DatabaseError, pw.InterfaceError, QueuectlError):
            if not self.queue.db.in_transaction():
                self.queue.db.close()
            return []
        for name, ids in fired:
            more = f" and {len(ids) - 1} earlier missed tick(s)" if len(ids) > 1 else ""
            self.log(f"schedule {name}: enqueued {ids[-1]}{more}")
        return fired
