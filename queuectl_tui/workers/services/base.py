"""The one shape of a pool's background duties.

A service has a name, an interval and `turn()`, called on every pass of the
supervisor's loop (every 0.1 s): it returns at once unless its interval has
passed, then does one round. A service that works on its own thread (finish
hooks) starts and stops it with `start()` and `stop()`; the others keep the
default no-ops.

Database trouble in a round is survived the same way by every service: the
connection is dropped (the next use opens a fresh one), `trouble()` is told,
and the next turn tries again. Only the rescuer says so in the pool's log;
for the others trouble only means later, and saying it again would repeat
the rescuer's line. Any other error is a bug and stops the pool.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, ClassVar

from queuectl_tui.workers.pool_log import PoolLog
from queuectl_tui.workers.trouble import DB_TROUBLE, drop_connection

if TYPE_CHECKING:
    from queuectl_tui.engine import Queue


class Service:
    """One background duty of a pool. Subclasses set `name`, `every` (seconds
    between rounds; 0: every turn) and `round()`; `first` delays the first."""

    name: ClassVar[str] = "service"
    every: float = 0.0
    first: float = 0.0
    # Whether it keeps turning while the pool stops (after its workers' jobs).
    while_stopping: ClassVar[bool] = False
    # Errors besides database trouble that only mean "try again later".
    survives: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, queue: Queue, events: PoolLog,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.events = events
        self.clock = clock
        self.next_turn = clock() + self.first

    def start(self) -> None:
        """Start its thread, if it has one."""

    def stop(self) -> None:
        """The pool's workers are done: end its thread, if it has one."""

    def turn(self, stopping: int = 0) -> None:
        """Called from the supervisor's loop with how far the pool is in
        stopping (0: running); one round when it is time."""
        if stopping and not self.while_stopping:
            return
        now = self.clock()
        if now < self.next_turn:
            return
        self.next_turn = now + self.every
        try:
            self.round(now)
        except DB_TROUBLE + self.survives as exc:
            self.trouble(exc)
            drop_connection(self.queue.db)

    def round(self, now: float) -> None:
        """One round of the duty (it may set `next_turn` sooner: work left over)."""
        raise NotImplementedError

    def trouble(self, exc: Exception) -> None:
        """A round met database trouble; the rescuer is the one that says so."""
