"""What a big bulk enqueue costs everyone else, measured as users run it.

    python bench/bulk_contention.py                  # 1,000,000 lines (the issue's figure)
    python bench/bulk_contention.py --lines 50000    # a smoke run (CI)

Black-box: real processes only. A pool started by `queuectl worker start --count 2`
works through a stream of trivial jobs; meanwhile `queuectl enqueue --file` adds
N more lines. Measured, during the bulk enqueue and during a baseline window of
the same length without it:

- worker throughput: jobs completed per second (read from the database);
- reader latency: `queuectl status` and `queuectl list --limit 20` as CLI processes,
  one after the other, p50 / p95 / max;
- the write lock: a probe process that takes and releases SQLite's write lock in
  a loop through SQLite's busy handler, as another program would; its longest
  wait. Then the bulk enqueue again on its own, watched by that probe and by
  one that polls every 0.5 ms (its longest wait is the longest single hold);
- the bulk enqueue itself: wall time and lines per second.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from abtrees import cached_pyc_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import os, sqlite3, sys, time
polling = sys.argv[3] == "poll"
conn = sqlite3.connect(sys.argv[1], timeout=0 if polling else 120, isolation_level=None)
worst = 0.0
while not os.path.exists(sys.argv[2]):
    t = time.monotonic()
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:  # polling: no busy handler
            if not polling or "locked" not in str(exc):
                raise
            time.sleep(0.0005)
    worst = max(worst, time.monotonic() - t)
    conn.execute("COMMIT")
    time.sleep(0.01)
print(worst)
"""


class LockProbe:
    """Takes and releases the write lock in a loop and reports its longest wait.

    `busy`: through SQLite's busy handler, as another program's writer would;
    the handler sleeps up to 100 ms between tries and misses a lock left free
    for a few ms, so this is the wait such a writer sees, which can span
    several of the holder's transactions. `poll`: no handler, a try every
    0.5 ms, so its longest wait is the longest single hold."""

    def __init__(self, db: Path, mode: str = "busy") -> None:
        self.stop = db.with_name(db.name + f".probe-stop-{mode}-{time.monotonic_ns()}")
        self.proc = subprocess.Popen([sys.executable, "-c", PROBE, str(db), str(self.stop),
                                      mode], stdout=subprocess.PIPE, text=True)

    def worst(self) -> float:
        self.stop.touch()
        return round(float(self.proc.communicate(timeout=300)[0].strip()), 3)


def queuectl_env(db: Path) -> dict[str, str]:
    """The environment of every queuectl process here: `.pyc` files cached, as an
    installed package has them (a sandbox's PYTHONDONTWRITEBYTECODE would make
    each `status` recompile queuectl and count that as its latency)."""
    return {**cached_pyc_env(), "QUEUECTL_DB": str(db), "PYTHONPATH": str(ROOT)}


def cli(db: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "queuectl_tui", *args], env=queuectl_env(db),
                          capture_output=True, text=True, **kw)


def completed(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM job WHERE state = 'completed'").fetchone()[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def window(db: Path, seconds: float | None, bulk: subprocess.Popen | None) -> dict:
    """Readers in a loop while the window lasts (the bulk enqueue, or `seconds`)."""
    probe = LockProbe(db)
    start, done0 = time.monotonic(), completed(db)
    reads: dict[str, list[float]] = {"status": [], "list": []}
    while (bulk.poll() is None) if bulk else (time.monotonic() - start < seconds):
        for name, args in (("status", ["status"]), ("list", ["list", "--limit", "20"])):
            t = time.monotonic()
            result = cli(db, *args)
            reads[name].append(time.monotonic() - t)
            assert result.returncode == 0, result.stderr
    elapsed = time.monotonic() - start
    done = completed(db) - done0
    return {"seconds": round(elapsed, 2), "jobs_per_s": round(done / elapsed, 1),
            "lock_wait_max_s": probe.worst(),
            **{f"{name}_ms": {"p50": round(1000 * pct(v, 0.5), 1),
                              "p95": round(1000 * pct(v, 0.95), 1),
                              "max": round(1000 * max(v), 1), "n": len(v)}
               for name, v in reads.items() if v}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--stream", type=int, default=200_000,
                        help="trivial jobs queued first, for the workers to chew on")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="queuectl-bulk-"))
    db = work / "bench.db"
    line = json.dumps({"command": "true"}) + "\n"
    (work / "stream.jsonl").write_text(line * args.stream)
    (work / "bulk.jsonl").write_text(line * args.lines)
    assert cli(db, "enqueue", "--file", str(work / "stream.jsonl")).returncode == 0
    pool = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "worker", "start",
                             "--count", "2"], env=queuectl_env(db),
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(2.0)  # let the pool settle into its stream
        started = time.monotonic()
        bulk = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "enqueue", "--file",
                                 str(work / "bulk.jsonl")],
                                env=queuectl_env(db), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        during = window(db, None, bulk)
        bulk_s = time.monotonic() - started
        assert bulk.returncode == 0, bulk.stderr.read()
        baseline = window(db, min(max(during["seconds"], 5.0), 60.0), None)
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(60)
    result = {"lines": args.lines, "bulk_seconds": round(bulk_s, 2),
              **_alone(work),
              "bulk_lines_per_s": round(args.lines / bulk_s), "during_bulk": during,
              "baseline": baseline, "load_avg": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _alone(work: Path) -> dict[str, float]:
    """The bulk enqueue again, into a fresh database with only the two probes
    watching: the polling one's longest wait is the longest the bulk enqueue
    held the lock; the busy-handler one's, what another program's writer waits."""
    fresh = work / "probe.db"
    assert cli(fresh, "enqueue", "true").returncode == 0
    polling, busy = LockProbe(fresh, "poll"), LockProbe(fresh, "busy")
    assert cli(fresh, "enqueue", "--file", str(work / "bulk.jsonl")).returncode == 0
    return {"bulk_alone_lock_hold_max_s": polling.worst(),
            "bulk_alone_busy_handler_wait_max_s": busy.worst()}


if __name__ == "__main__":
    sys.exit(main())
