"""Version 2 added the partial index `job_due` (idle workers' next wake-up);
version 4 replaced it with a per-queue one, created by its own step, so this
step has nothing left to do."""

from __future__ import annotations

from queuectl_tui.engine.storage.opened import Opened


def migrate(opened: Opened) -> None:
    """Nothing: see the module's docstring."""
