"""Signals to this host's processes, on the engine's behalf: the
`ProcessControl` a worker, a pool, `worker stop` and the console give the
`Queue` they build.

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

from queuectl_tui.engine import CLAIM_MARKER


def processes_of_claim(token: str) -> list[int]:
    """Pids on this host whose environment carries this claim's marker (Linux)."""
    needle = f"{CLAIM_MARKER}={token}".encode()
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
