"""The task the peers run: the same shell command through a subprocess, as queuectl does.

Imported by huey's consumer (`peer_tasks.huey`) and by RQ's workers
(`peer_tasks.rq_run`); both find this file through PYTHONPATH=bench/.
The huey database file comes from $BENCH_HUEY_DB (one file per run).
"""

from __future__ import annotations

import os
import subprocess
import time


def _run(command: str) -> int:
    return subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE).returncode


def rq_run(command: str, enqueued_at: float = 0.0) -> tuple[float, float, float]:
    started = time.time()
    _run(command)
    return enqueued_at, started, time.time()


try:
    from huey import SqliteHuey
except ImportError:  # RQ workers need not have huey
    huey = None
else:
    huey = SqliteHuey("bench", filename=os.environ.get("BENCH_HUEY_DB", "/tmp/bench-huey.db"))

    @huey.task()
    def huey_run(command: str, enqueued_at: float = 0.0) -> tuple[float, float, float]:
        started = time.time()
        _run(command)
        return enqueued_at, started, time.time()
