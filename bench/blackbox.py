"""Trivial-job throughput as a user sees it, and what a worker spends per job.

    python bench/blackbox.py                      # 10,000 `true` jobs, 2 and 1 workers, 3 rounds
    python bench/blackbox.py --jobs 2000 --reps 1 # a smoke run
    python bench/blackbox.py --tree before=/tmp/old --tree after=.   # A/B, interleaved

Black-box: real CLI processes only. Each run makes a fresh database and a file
of N lines `{"command": "true"}`, then either

- enqueue-first: `queuectl enqueue --file` runs to the end, then the clock starts
  and `queuectl worker start --count W` is launched (its start-up is counted);
- workers-first: `worker start --count W` is launched and waited for until every
  worker has registered idle, then the clock starts and `enqueue --file` is run
  (the enqueue is counted).

The run ends at the last job's `finished_at` (read from the database; the
benchmark looks at the database in-process every 50 ms, which costs next to
nothing, rather than running `queuectl status` in a loop, which costs a core's
worth of interpreter start-ups). jobs/s = N / (last finished_at - clock start).

Worker CPU per job (workers-first runs only, where the pool's start-up is
outside the window): utime + stime of the worker processes from /proc/PID/stat
over the window, divided by N; the `sh` children's share is their cutime +
cstime (the worker reaps them). Trees are interleaved within each round, so an
A/B comparison shares the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from abtrees import add_tree_option, cached_pyc_env, trees, write_result

TICK = os.sysconf("SC_CLK_TCK")


def env_for(tree: Path, db: Path, pycache: Path) -> dict[str, str]:
    return {**cached_pyc_env(pycache), "QUEUECTL_DB": str(db), "PYTHONPATH": str(tree)}


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(own utime + stime, reaped children's cutime + cstime) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def ready_workers(db: Path, supervisor: int) -> list[int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return [pid for (pid,) in conn.execute(
            "SELECT pid FROM worker WHERE supervisor_pid = ? AND state = 'idle'", (supervisor,))]


def finished(db: Path, n: int) -> float | None:
    """The last finished_at once all n jobs are completed, else None."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        done, last = conn.execute(
            "SELECT COUNT(*), MAX(finished_at) FROM job WHERE state = 'completed'").fetchone()
    return last if done >= n else None


def wait_for(what: str, probe, limit: float) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not within {limit:.0f} s")


def one_run(tree: Path, work: Path, jobs_file: Path, n: int, count: int, order: str,
            pycache: Path) -> dict[str, Any]:
    db = work / f"bb-{time.monotonic_ns()}.db"
    env = env_for(tree, db, pycache)
    cli = [sys.executable, "-m", "queuectl_tui"]

    def enqueue() -> float:
        t = time.monotonic()
        subprocess.run([*cli, "enqueue", "--file", str(jobs_file)], env=env, check=True,
                       cwd=work, stdout=subprocess.DEVNULL)
        return time.monotonic() - t

    # `worker start` needs the database to exist: any write creates it.
    subprocess.run([*cli, "config", "set", "max-retries", "0"], env=env, check=True,
                   cwd=work, stdout=subprocess.DEVNULL)
    enqueue_s = enqueue() if order == "enqueue-first" else None
    start = time.time()
    pool = subprocess.Popen([*cli, "worker", "start", "--count", str(count)], env=env,
                            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    before: dict[int, tuple[int, int]] = {}
    try:
        if order == "workers-first":
            pids = wait_for("workers ready", lambda: (lambda p: p if len(p) == count else None)(
                ready_workers(db, pool.pid)), 60)
            before = {pid: cpu_ticks(pid) for pid in pids}
            start = time.time()
            enqueue_s = enqueue()
        last = wait_for("all jobs completed", lambda: finished(db, n), 600)
        after = {pid: cpu_ticks(pid) for pid in before}
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(60)
    row: dict[str, Any] = {"jobs_per_s": round(n / (last - start), 1),
                           "enqueue_s": round(enqueue_s or 0.0, 3)}
    if before:
        own = sum(after[p][0] - before[p][0] for p in before)
        child = sum(after[p][1] - before[p][1] for p in before)
        row["worker_cpu_us_per_job"] = round(own / TICK / n * 1e6)
        row["sh_cpu_us_per_job"] = round(child / TICK / n * 1e6)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(f"{db}.logs", ignore_errors=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--counts", default="2,1", help="worker counts, comma-separated")
    parser.add_argument("--orders", default="enqueue-first,workers-first")
    add_tree_option(parser)
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    measured = trees(args)
    work = Path(tempfile.mkdtemp(prefix="queuectl-blackbox-"))
    pycache = work / "pycache"
    jobs_file = work / "jobs.jsonl"
    jobs_file.write_text('{"command": "true"}\n' * args.jobs)
    runs: dict[str, list[dict[str, Any]]] = {}
    load = [os.getloadavg()[0]]
    try:
        for rep in range(args.reps):
            for count in (int(c) for c in args.counts.split(",")):
                for order in args.orders.split(","):
                    for name, tree in measured.items():
                        row = one_run(tree, work, jobs_file, args.jobs, count, order, pycache)
                        key = f"{name} {order} x{count}"
                        runs.setdefault(key, []).append(row)
                        print(f"round {rep + 1}: {key}: {row}", flush=True)
            load.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = {key: {field: statistics.median(r[field] for r in rows)
                   for field in rows[0]} for key, rows in runs.items()}
    print(json.dumps(table, indent=2))
    write_result(args.out, {"jobs": args.jobs, "reps": args.reps,
                            "trees": {k: str(v) for k, v in measured.items()},
                            "median": table, "runs": runs, "load_avg_1min": load})
    return 0


if __name__ == "__main__":
    sys.exit(main())
