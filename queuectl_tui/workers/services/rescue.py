"""Rescue: take back the jobs of the pool's own dead workers at once.

The supervisor sees a worker die (or kills it on a third Ctrl+C) and queues
its id here; the next round gives its job back to the queue without waiting
for the lease to run out (the attempt not counted when the pool killed it on
purpose), and forgets the worker. The database may be down or locked for a
while: the pool stays up, says so once (this is the one service that reports
database trouble, for all of them) and tries again on the next turn.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from queuectl_tui.engine import worker_gone
from queuectl_tui.workers.pool_log import ERROR, PoolLog
from queuectl_tui.workers.services.base import Service
from queuectl_tui.workers.trouble import first_line

if TYPE_CHECKING:
    from queuectl_tui.engine import Queue


class Rescuer(Service):
    name = "rescue"
    while_stopping = True

    def __init__(self, queue: Queue, events: PoolLog,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(queue, events, clock)
        # Dead workers whose job is still to be taken back (worker id, attempt counted?).
        self.pending: list[tuple[str, bool]] = []
        self.said: str | None = None  # the database problem being ridden out, said once

    def add(self, worker_id: str, counted: bool) -> None:
        """A worker of the pool is gone: take its job back on the next round."""
        self.pending.append((worker_id, counted))

    def round(self, now: float) -> None:
        while self.pending:
            worker_id, counted = self.pending[0]
            rescued = self.queue.rescue_runs(worker_id=worker_id, counted=counted)
            worker_gone(worker_id)
            if self.said is not None:
                self.events.pool("recovered", "database reachable again")
                self.said = None
            self.pending.pop(0)
            for run in rescued:
                self.events.rescued("supervisor", run)

    def trouble(self, exc: Exception) -> None:
        text = first_line(exc)
        if text != self.said:
            self.said = text
            self.events.pool("trouble", f"database trouble: {text}; the pool keeps "
                             "running and retries", ERROR, error=text)
