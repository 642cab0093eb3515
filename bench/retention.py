"""Retention under a steady stream: does the database stay bounded, at what cost?

    python bench/retention.py                       # 30 min with retention, 10 min without
    python bench/retention.py --minutes 1 --baseline-minutes 1 --keep 10s   # smoke (CI)

Black-box, as users run it: `queuectl config set retention-completed 1m`, a pool
started by `queuectl worker start --count 2 --quiet` (job lines off, as a busy
service would run; its log goes to a file), and a feeder that keeps a backlog
of trivial jobs (`echo tick`, so every job writes a log file) topped up with
`queuectl enqueue --file -`. The pool's own pruner does the pruning. Every
`--sample` seconds it records the database size (main file + WAL), the log
folder (files, bytes), the rows kept and the jobs finished so far.

Then the same for `--baseline-minutes` with retention off, and compares the
throughput over the same minutes (from the end of the first retention period,
when pruning has started, to the end of the baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKLOG = 4000  # keep at least this many jobs waiting: the pool never starves
TOP_UP = 4000


def cli(db: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "QUEUECTL_DB": str(db), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "queuectl_tui", *args], env=env,
                          input=stdin, capture_output=True, check=True)


def waiting(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM job WHERE state IN ('pending', 'failed')"
                        ).fetchone()[0]


def folder(path: Path) -> tuple[int, int]:
    files = size = 0
    if path.exists():
        for entry in os.scandir(path):
            if entry.name.endswith(".log") and entry.name[:-4].isdigit():
                try:
                    size += entry.stat().st_size
                except FileNotFoundError:  # pruned while we looked
                    continue
                files += 1
    return files, size


def run(db: Path, minutes: float, keep: str | None, sample_s: float) -> list[dict]:
    """One run; returns the samples."""
    cli(db, "config", "set", "retention-completed", keep or "forever")
    conn = sqlite3.connect(db, timeout=60)
    logs_dir = db.with_name(db.name + ".logs")
    line = (json.dumps({"command": "echo tick"}) + "\n").encode()
    enqueued = 0
    env = {**os.environ, "QUEUECTL_DB": str(db), "PYTHONPATH": str(ROOT)}
    # The pool logs two lines per job: to a file (a pipe nobody reads would fill
    # and block the workers, as it would for any program).
    pool_log = db.with_name(db.name + ".pool.log")
    with open(pool_log, "wb") as log_fh:
        pool = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "worker", "start",
                                 "--count", "2", "--quiet"], env=env,
                                stdout=subprocess.DEVNULL, stderr=log_fh,
                                start_new_session=True)
    samples: list[dict] = []
    started = time.monotonic()
    next_sample = started
    try:
        while time.monotonic() - started < minutes * 60:
            if waiting(conn) < BACKLOG:
                cli(db, "enqueue", "--file", "-", stdin=line * TOP_UP)
                enqueued += TOP_UP
            now = time.monotonic()
            if now >= next_sample:
                next_sample += sample_s
                rows = dict(conn.execute("SELECT state, COUNT(*) FROM job GROUP BY state"))
                unfinished = sum(rows.get(s, 0) for s in ("pending", "failed", "processing"))
                files, size = folder(logs_dir)
                wal = db.with_name(db.name + "-wal")
                samples.append({
                    "t_s": round(now - started, 1),
                    "finished": enqueued - unfinished,
                    "rows_completed": rows.get("completed", 0),
                    "events": conn.execute("SELECT COUNT(*) FROM event").fetchone()[0],
                    "db_mb": round(db.stat().st_size / 2**20, 1),
                    "wal_mb": round((wal.stat().st_size if wal.exists() else 0) / 2**20, 1),
                    "log_files": files, "log_mb": round(size / 2**20, 2),
                })
                print(json.dumps(samples[-1]), flush=True)
            time.sleep(0.25)
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(timeout=60)
        conn.close()
    pruned_lines = [ln for ln in pool_log.read_text(errors="replace").splitlines()
                    if "pruned" in ln]
    samples.append({"pool_pruned_lines": len(pruned_lines)})
    return samples


def rate(samples: list[dict], start_s: float, end_s: float) -> float:
    """Jobs finished per second between two times of a run."""
    points = [s for s in samples if "t_s" in s]
    a = min(points, key=lambda s: abs(s["t_s"] - start_s))
    b = min(points, key=lambda s: abs(s["t_s"] - end_s))
    return (b["finished"] - a["finished"]) / max(1e-9, b["t_s"] - a["t_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--baseline-minutes", type=float, default=10)
    parser.add_argument("--keep", default="1m", help="retention-completed for the first run")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="queuectl-retention-") as tmp:
        kept = run(Path(tmp) / "kept.db", args.minutes, args.keep, args.sample)
        base = run(Path(tmp) / "base.db", args.baseline_minutes, None, args.sample)
    window = (min(60.0, args.baseline_minutes * 30), args.baseline_minutes * 60)
    result = {
        "keep": args.keep, "minutes": args.minutes, "baseline_minutes": args.baseline_minutes,
        "with_retention": kept, "without_retention": base,
        "window_s": window,
        "jobs_per_s_with": round(rate(kept, *window), 1),
        "jobs_per_s_without": round(rate(base, *window), 1),
    }
    result["ratio"] = round(result["jobs_per_s_with"] / max(1e-9, result["jobs_per_s_without"]), 3)
    print(json.dumps({k: v for k, v in result.items()
                      if k not in ("with_retention", "without_retention")}))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
