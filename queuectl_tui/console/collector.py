"""When the console's garbage is collected: while the keyboard is quiet.

Python's full collection walks every object the process holds, and a console
holds many: the imported modules, seven views of widgets, and their drawing
caches (segments and styles for every cell shown lately). Measured beside a
busy pool (bench/console_keys.py, 100,000 jobs): a full pass took 35 ms at
start and 270 ms once the caches had filled, and 23 of them ran during two
minutes of keys, each one landing on whatever key came next: they were the
200-800 ms outliers of every key, moving and paging included.

So a console takes the full pass in hand. What survives a pass is frozen
(`gc.freeze`: never walked again), so the next pass walks only what is newer;
the automatic full pass is off; the refresh tick runs one when the keys have
been quiet for a moment and the last was a while ago, and at the latest after
MAX_WAIT_S, quiet or not. The young generations stay automatic (a few ms each).
Every THAW_EVERY_S a pass unfreezes first, so garbage among frozen objects (a
worker pane removed since, a dialog that was open when frozen) is found too.
"""

from __future__ import annotations

import gc
from typing import Callable

QUIET_S = 1.0  # no key or click for this long: the person is reading, not typing
EVERY_S = 30.0  # a pass at most this often while quiet
MAX_WAIT_S = 120.0  # and at least this often, quiet or not
THAW_EVERY_S = 300.0  # a pass over everything, frozen objects included, this often
NEVER = 1_000_000_000  # a full-collection threshold no count reaches


class IdleCollector:
    """The console's full garbage collections, at quiet moments (see above)."""

    def __init__(self, monotonic: Callable[[], float], gc_module=gc) -> None:
        self.monotonic = monotonic
        self.gc = gc_module
        self.saved: tuple[int, int, int] | None = None
        self.last_pass = self.last_thaw = self.last_input = 0.0
        self.passes = 0

    def start(self) -> None:
        """Take over from the automatic full pass; what exists now is frozen."""
        now = self.monotonic()
        self.last_pass = self.last_thaw = self.last_input = now
        self.saved = self.gc.get_threshold()
        young, middle = self.saved[0], self.saved[1]
        self.gc.set_threshold(young, middle, NEVER)
        self.gc.freeze()

    def stop(self) -> None:
        """Give the process back its own collector (tests run many consoles)."""
        if self.saved is not None:
            self.gc.set_threshold(*self.saved)
            self.gc.unfreeze()
            self.saved = None

    def saw_input(self) -> None:
        self.last_input = self.monotonic()

    def tick(self, can_freeze: bool = True) -> bool:
        """Run a pass if one is due; True if it ran. `can_freeze` is False while a
        dialog is open (its widgets, frozen, would outlive it until the next thaw)."""
        if self.saved is None:
            return False
        now = self.monotonic()
        since = now - self.last_pass
        quiet = now - self.last_input >= QUIET_S
        if not ((quiet and since >= EVERY_S) or since >= MAX_WAIT_S):
            return False
        if now - self.last_thaw >= THAW_EVERY_S:
            self.gc.unfreeze()
            self.last_thaw = now
        self.gc.collect()
        if can_freeze:
            self.gc.freeze()
        self.last_pass = now
        self.passes += 1
        return True
