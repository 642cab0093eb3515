"""Find the processes of one claimed run on this host, by the marker in their
environment (`QUEUECTL_CLAIM=<claim token>`, set for every job by the worker).

A rescuer kills a dead worker's leftovers by process group when the group was
recorded, but a worker killed in the first moments of a run dies before it
records anything; the marker finds them anyway, and a claim token is never
reused, so no unrelated process can match.
"""

from __future__ import annotations

import os

MARKER = "QUEUECTL_CLAIM"


def processes_of_claim(token: str) -> list[int]:
    """Pids on this host whose environment carries this claim's marker (Linux)."""
    needle = f"{MARKER}={token}".encode()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:  # gone, or not ours to read
            continue
    return found


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
