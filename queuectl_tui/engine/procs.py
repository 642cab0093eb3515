"""What the engine knows of this host's processes: whether a worker still
lives (read from /proc), the marker every run carries, and `ProcessControl`,
what the engine asks to be done to processes (kill a dead worker's leftover
run, ask a pool to stop). The engine sends no signal itself: whoever builds a
`Queue` that may rescue runs or stop workers hands it one
(`queuectl_tui/workers/signals.py`).
"""

from __future__ import annotations

from typing import Protocol

MARKER = "QUEUECTL_CLAIM"
DEFAULT_GRACE_S = 10.0  # SIGTERM, then SIGKILL this much later (cancel, stop now)


def worker_alive(pid: int | None, worker_id: str) -> bool:
    """Is this worker process running (not dead, not a zombie, not SIGSTOPped)?

    The command line must name the worker id, so a recycled pid never counts.
    """
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if worker_id.encode() not in fh.read().split(b"\0"):
                return False
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X", b"T", b"t")


class ProcessControl(Protocol):
    """What the engine needs done to processes of this host."""

    def kill_run(self, run_pid: int | None, claim_token: str | None) -> None:
        """Kill what is left of a run: its process group and its marked processes."""

    def ask_to_stop(self, pid: int) -> bool:
        """Ask a supervisor or lone worker to stop gracefully; False if it is gone."""

