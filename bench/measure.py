"""What the benchmark scripts share: CPU of live processes from /proc, waiting
with a deadline, stopping a process group, medians and percentiles, the
machine's load, and the spawn ceiling.

The spawn ceiling is the most trivial jobs two processes can start on this
machine when they do nothing else: each starts `/bin/sh -c true` and waits for
it, in a loop, in parallel (`os.posix_spawn` or `subprocess.Popen`, as named).
No queue does better than that; `run.py` measures it in the same rounds as
the queues so the ratio is taken under the same load.

    python bench/measure.py ceiling posix_spawn 2000   # one loop; prints its start and end
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

TICK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")
SPAWN_HOWS = ("posix_spawn", "popen")


# =========================================================================== processes

def cpu_ticks(pid: int) -> tuple[int, int]:
    """(own utime + stime, reaped children's cutime + cstime) of a live process, in ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one live process, in seconds."""
    return cpu_ticks(pid)[0] / TICK


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def idle_cpu(pids: list[int], seconds: float) -> dict[int, float]:
    """Share of one core each process used over `seconds` (0.01 = 1%)."""
    before = {p: cpu_seconds(p) for p in pids}
    t0 = time.monotonic()
    time.sleep(seconds)  # the measuring window itself, not a synchronisation
    elapsed = time.monotonic() - t0
    return {p: (cpu_seconds(p) - before[p]) / elapsed for p in pids}


def wait_for(what: str, probe: Callable[[], T], limit: float, poll: float = 0.02) -> T:
    """Poll `probe` until it returns something truthy (which is returned)."""
    deadline = time.monotonic() + limit
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {limit:g} s waiting for {what}")
        time.sleep(poll)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Signal the process group `proc` leads (started with start_new_session) and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# =========================================================================== figures

def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(rates: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "runs": rates}


def load() -> float:
    """The 1-minute load average, to print beside every figure."""
    return round(os.getloadavg()[0], 2)


# =========================================================================== spawn ceiling

def spawn_ceiling(n: int, how: str = "posix_spawn", procs: int = 2) -> dict[str, Any]:
    """`procs` processes start n `/bin/sh -c true` between them, in parallel; jobs/s
    from the first loop's start to the last one's end (interpreter start-up excluded)."""
    loops = [subprocess.Popen([sys.executable, __file__, "ceiling", how, str(n // procs)],
                              stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    spans = []
    for p in loops:
        out, _ = p.communicate(timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"spawn loop ({how}) exited with {p.returncode}")
        spans.append(json.loads(out))
    t0, t1 = min(s["t0"] for s in spans), max(s["t1"] for s in spans)
    done = sum(s["n"] for s in spans)
    return {"n": done, "t0": t0, "t1": t1, "jobs_per_s": done / (t1 - t0)}


def _spawn_loop(how: str, n: int) -> dict[str, float]:
    argv, env = ["/bin/sh", "-c", "true"], dict(os.environ)
    t0 = time.time()
    if how == "posix_spawn":
        for _ in range(n):
            os.waitpid(os.posix_spawn(argv[0], argv, env), 0)
    elif how == "popen":
        for _ in range(n):
            subprocess.Popen(argv).wait()
    else:
        raise SystemExit(f"unknown spawn method {how!r} (one of {', '.join(SPAWN_HOWS)})")
    return {"n": n, "t0": t0, "t1": time.time()}


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "ceiling":
        raise SystemExit(f"usage: {Path(__file__).name} ceiling posix_spawn|popen N")
    print(json.dumps(_spawn_loop(sys.argv[2], int(sys.argv[3]))))
