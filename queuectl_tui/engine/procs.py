"""The processes of this host the engine must act on: a dead worker's leftover
run, a worker asked to stop, and whether a worker still lives.

`ProcessControl` is all the engine asks of processes; `LocalProcesses` does it
with signals and /proc. Every signal the engine sends goes through it.

A run's processes are found by the marker in their environment
(`QUEUECTL_CLAIM=<claim token>`, set for every job by the worker). A rescuer
kills a dead worker's leftovers by process group when the group was recorded,
but a worker killed in the first moments of a run dies before it records
anything; the marker finds them anyway, and a claim token is never reused, so
no unrelated process can match.
"""

from __future__ import annotations

import os
import signal
from typing import Protocol

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


class ProcessControl(Protocol):
    """What the engine needs done to processes of this host."""

    def kill_run(self, run_pid: int | None, claim_token: str | None) -> None:
        """Kill what is left of a run: its process group and its marked processes."""

    def ask_to_stop(self, pid: int) -> bool:
        """Ask a supervisor or lone worker to stop gracefully; False if it is gone."""

    def worker_alive(self, pid: int | None, worker_id: str) -> bool:
        """Is this worker process running?"""


class LocalProcesses:
    """`ProcessControl` with signals and /proc (Linux)."""

    def kill_run(self, run_pid: int | None, claim_token: str | None) -> None:
        groups = {run_pid} if run_pid else set()
        if claim_token:
            for pid in processes_of_claim(claim_token):
                try:
                    groups.add(os.getpgid(pid))
                except ProcessLookupError:
                    pass
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def ask_to_stop(self, pid: int) -> bool:
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def worker_alive(self, pid: int | None, worker_id: str) -> bool:
        return worker_alive(pid, worker_id)
