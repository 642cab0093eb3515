"""What `worker start`'s per-job log lines cost, measured as users run it.

    python bench/worker_logs.py                        # 5,000 `true` jobs, 3 rounds
    python bench/worker_logs.py --before /path/to/old  # and a checkout without the log lines

Black-box: `queuectl enqueue --file` of N `true` jobs, then `queuectl worker
start --count 2` with stderr going to a pipe read by this process (as journald
reads a service's stderr). Throughput is N / (last finished_at - first
started_at), read from the database, so worker start-up is not counted; CPU
per job is the pool's whole CPU time (supervisor, workers and their shells,
from getrusage once the pool has exited) over N, which load elsewhere on the
machine disturbs far less than throughput. Each
round runs every variant once, in turn, so load from elsewhere on the machine
hits them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(repo: Path, jobs: int, extra: list[str]) -> tuple[float, float, int]:
    """Jobs per second for one pool run, its CPU µs per job, and the bytes it
    wrote to stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "q.db"
        # cwd: `python -m` puts the working directory first on sys.path, so run
        # from the temporary folder or the checkout we stand in gets measured.
        env = {**os.environ, "QUEUECTL_DB": str(db), "PYTHONPATH": str(repo)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        spec = Path(tmp) / "jobs.jsonl"
        spec.write_text("".join(json.dumps({"command": "true"}) + "\n" for _ in range(jobs)))
        subprocess.run([sys.executable, "-m", "queuectl_tui", "enqueue", "--file", str(spec)],
                       env=env, check=True, stdout=subprocess.DEVNULL, cwd=tmp)
        cpu_before = _children_cpu()
        pool = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "worker", "start",
                                 "--count", "2", *extra], env=env, cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        written = [0]

        def drain() -> None:  # the journal's side of the pipe
            while chunk := pool.stderr.read1(65536):
                written[0] += len(chunk)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        conn = sqlite3.connect(db, timeout=30)
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline:
                done = conn.execute("SELECT COUNT(*) FROM job WHERE state = 'completed'"
                                    ).fetchone()[0]
                if done == jobs:
                    break
                time.sleep(0.2)  # a poll, not synchronisation: the deadline bounds it
            else:
                raise SystemExit("the pool did not finish in 300 s")
            first, last = conn.execute("SELECT MIN(started_at), MAX(finished_at) FROM job"
                                       ).fetchone()
        finally:
            conn.close()
            pool.terminate()
            pool.wait(60)
            reader.join(10)
        return jobs / (last - first), (_children_cpu() - cpu_before) / jobs * 1e6, written[0]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path,
                        help="also measure this checkout (as it is: no extra arguments)")
    parser.add_argument("--variants", default="default,--quiet,--log-format json",
                        help="comma-separated extra `worker start` arguments per variant "
                             "('default' = none)")
    args = parser.parse_args()
    runs = [(v.strip(), ROOT, [] if v.strip() == "default" else v.split())
            for v in args.variants.split(",")]
    if args.before:
        runs.insert(0, (f"before ({args.before.name})", args.before, []))
    rates: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    cpus: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    sizes: dict[str, int] = {}
    for _ in range(args.rounds):
        for label, repo, extra in runs:
            rate, cpu, written = one_run(repo, args.jobs, extra)
            rates[label].append(rate)
            cpus[label].append(cpu)
            sizes[label] = written
    for variant in rates:
        got = rates[variant]
        print(f"{variant:<20} median {statistics.median(got):7.1f} jobs/s "
              f"(min {min(got):.1f}, max {max(got):.1f}); CPU per job median "
              f"{statistics.median(cpus[variant]):6.0f} µs (min {min(cpus[variant]):.0f}); "
              f"stderr {sizes[variant]:,} bytes")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
