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
