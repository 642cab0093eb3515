"""Schedules: enqueue due cron ticks (engine/schedules.py).

Turned on every pass of the supervisor's loop (every 0.1 s), so a tick fires
within a fraction of a second while any pool runs, on any host. A round is
one read of the (small) schedule table when nothing is due; pools racing for
one tick are settled by the database: one conditional update wins.
"""

from __future__ import annotations

from queuectl_tui.engine import fire_due_schedules
from queuectl_tui.errors import QueuectlError
from queuectl_tui.workers.services.base import Service


class Scheduler(Service):
    name = "scheduler"
    survives = (QueuectlError,)

    def round(self, now: float) -> None:
        for name, ids in fire_due_schedules(self.queue):
            more = f" and {len(ids) - 1} earlier missed tick(s)" if len(ids) > 1 else ""
            self.events.note(f"schedule {name}: enqueued {ids[-1]}{more}")
