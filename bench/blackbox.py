"""Trivial-job throughput as a user sees it, and what a worker spends per job.

    python bench/blackbox.py                      # 10,000 `true` jobs, 2 and 1 workers, 3 rounds
    python bench/blackbox.py --jobs 2000 --reps 1 # a smoke run
    python bench/blackbox.py --tree before=/tmp/old --tree after=.   # A/B, interleaved
    python bench/blackbox.py --pickup 1000 --reps 1   # pickup latency into an idle pool
    python bench/blackbox.py --idle 20 --reps 3       # an idle pool's CPU, and its stop

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
import random
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
from measure import TICK, cpu_ticks, idle_cpu, load, pct, wait_for


def env_for(tree: Path, db: Path, pycache: Path) -> dict[str, str]:
    return {**cached_pyc_env(pycache), "QUEUECTL_DB": str(db), "PYTHONPATH": str(tree)}


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


class Fresh:
    """A fresh SQLite database for one run, reached only through CLI processes of `tree`."""

    def __init__(self, tree: Path, work: Path, pycache: Path, tag: str = "bb") -> None:
        self.work = work
        self.db = work / f"{tag}-{time.monotonic_ns()}.db"
        self.env = env_for(tree, self.db, pycache)
        self.cli = [sys.executable, "-m", "queuectl_tui"]
        # `worker start` needs the database to exist: any write creates it.
        self.run("config", "set", "max-retries", "0")

    def run(self, *args: str) -> str:
        return subprocess.run([*self.cli, *args], env=self.env, check=True, cwd=self.work,
                              stdout=subprocess.PIPE, text=True).stdout

    def start_pool(self, count: int) -> subprocess.Popen:
        return subprocess.Popen([*self.cli, "worker", "start", "--count", str(count)],
                                env=self.env, cwd=self.work, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    def wait_idle(self, pool: subprocess.Popen, count: int) -> list[int]:
        """The worker pids, once all `count` have registered idle."""
        return wait_for("workers ready", lambda: (lambda p: p if len(p) == count else None)(
            ready_workers(self.db, pool.pid)), 60, poll=0.05)

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(f"{self.db}.logs", ignore_errors=True)


def stop_pool(pool: subprocess.Popen) -> None:
    os.killpg(pool.pid, signal.SIGTERM)
    pool.wait(60)


def one_run(tree: Path, work: Path, jobs_file: Path, n: int, count: int, order: str,
            pycache: Path) -> dict[str, Any]:
    """N `true` jobs through `count` workers, enqueue-first or workers-first (see above)."""
    fresh = Fresh(tree, work, pycache)

    def enqueue() -> float:
        t = time.monotonic()
        fresh.run("enqueue", "--file", str(jobs_file))
        return time.monotonic() - t

    enqueue_s = enqueue() if order == "enqueue-first" else None
    start = time.time()
    pool = fresh.start_pool(count)
    before: dict[int, tuple[int, int]] = {}
    try:
        if order == "workers-first":
            before = {pid: cpu_ticks(pid) for pid in fresh.wait_idle(pool, count)}
            start = time.time()
            enqueue_s = enqueue()
        last = wait_for("all jobs completed", lambda: finished(fresh.db, n), 600, poll=0.05)
        after = {pid: cpu_ticks(pid) for pid in before}
    finally:
        stop_pool(pool)
        fresh.drop()
    row: dict[str, Any] = {"jobs_per_s": round(n / (last - start), 1),
                           "enqueue_s": round(enqueue_s or 0.0, 3)}
    if before:
        own = sum(after[p][0] - before[p][0] for p in before)
        child = sum(after[p][1] - before[p][1] for p in before)
        row["worker_cpu_us_per_job"] = round(own / TICK / n * 1e6)
        row["sh_cpu_us_per_job"] = round(child / TICK / n * 1e6)
    return row


# ---------------------------------------------------------------- pickup latency

PICKUP_GAP_S = (0.02, 0.04)  # random pause between jobs: the workers are idle again
# `python -m queuectl_tui ARGS`, printing on stderr when the command has returned
CLI_STAMPED = ("import sys, time\nfrom queuectl_tui.cli import main\nrc = main()\n"
               "print(time.time(), file=sys.stderr, flush=True)\nraise SystemExit(rc)")


def pickup(tree: Path, work: Path, k: int, count: int, via: str,
           pycache: Path, trace: bool = False) -> dict[str, Any]:
    """k `true` jobs one at a time into an idle pool started by `worker start`,
    enqueued by a `queuectl enqueue true` process each (via="cli") or by one
    process of `tree` calling the engine (via="engine"). Per job: latency =
    started_at - created_at (both queuectl's own stamps: created_at is taken
    before the enqueue's transaction, started_at inside the claim's), split at
    the moment the enqueue returned (just after its commit). The CLI processes
    run the CLI's `main` as `python -m queuectl_tui` does and print that moment
    when it returns: the interpreter's exit takes 20 ms or more after it.

    With `trace`, the enqueueing processes run under `strace --seccomp-bpf`
    (only the traced calls stop the process) and each job's enqueue window says
    how long it spent in fdatasync/fsync and waiting for the writers' flock."""
    fresh = Fresh(tree, work, pycache, tag="pickup")
    log = work / f"pickup-{time.monotonic_ns()}.strace"
    strace = ["strace", "--seccomp-bpf", "-f", "-ttt", "-T", "-e",
              "trace=fdatasync,fsync,flock", "-A", "-o", str(log)] if trace else []
    pool = fresh.start_pool(count)
    try:
        fresh.wait_idle(pool, count)
        if via == "cli":
            sent = []
            for _ in range(k):
                done = subprocess.run([*strace, sys.executable, "-c", CLI_STAMPED, "enqueue",
                                       "true"],
                                      env=fresh.env, check=True, cwd=work, text=True,
                                      capture_output=True)
                sent.append((done.stdout.split()[-1], float(done.stderr.split()[-1])))
                time.sleep(random.uniform(*PICKUP_GAP_S))
        else:
            out = subprocess.run([*strace, sys.executable, __file__, "--enqueue-loop",
                                  str(fresh.db), str(k)], env=fresh.env, check=True, cwd=work,
                                 stdout=subprocess.PIPE, text=True).stdout
            sent = [(job_id, returned) for job_id, returned in json.loads(out)]
        wait_for("pickup jobs completed", lambda: finished(fresh.db, k), 120, poll=0.05)
        with sqlite3.connect(f"file:{fresh.db}?mode=ro", uri=True, timeout=30) as conn:
            stamps = {row[0]: row[1:] for row in conn.execute(
                "SELECT id, created_at, started_at FROM job")}
    finally:
        stop_pool(pool)
        fresh.drop()
    calls = _traced_calls(log) if trace else []
    log.unlink(missing_ok=True)
    jobs = []
    for job_id, returned in sent:
        created, started = stamps[job_id]
        job = {"id": job_id, "latency": started - created,
               "enqueue": returned - created, "after_enqueue": started - returned}
        if trace:  # (calls are few: a linear scan per job is fine for 1,000 jobs)
            inside = [(name, end, took) for name, end, took in calls
                      if created <= end - took and end <= returned]
            job["fsync"] = sum(took for name, _, took in inside if name != "flock")
            job["flock_wait"] = sum(took for name, _, took in inside if name == "flock")
        jobs.append(job)
    return {"via": via, "k": k, "workers": count, "jobs": jobs}


def _traced_calls(log: Path) -> list[tuple[str, float, float]]:
    """(call, end time, seconds in it) for each call in an `strace -ttt -T` log."""
    calls = []
    for line in log.read_text().splitlines():
        parts = line.split(None, 2)  # pid, start time, "call(...) = 0 <secs>"
        if len(parts) < 3 or "<" not in parts[2] or "(" not in parts[2]:
            continue
        name = parts[2].split("(", 1)[0]
        took = float(parts[2].rsplit("<", 1)[1].rstrip(">"))
        calls.append((name, float(parts[1]) + took, took))
    return calls


def pickup_summary(res: dict[str, Any], outlier_s: float = 0.2) -> dict[str, Any]:
    lat = [j["latency"] for j in res["jobs"]]
    after = [j["after_enqueue"] for j in res["jobs"]]
    worst = sorted(res["jobs"], key=lambda j: -j["latency"])
    return {"via": res["via"], "k": len(lat), "p50_ms": pct(lat, 50) * 1000,
            "p99_ms": pct(lat, 99) * 1000, "max_ms": max(lat) * 1000,
            # the workers' part alone: from the enqueue's return to the claim
            "after_p99_ms": pct(after, 99) * 1000, "after_max_ms": max(after) * 1000,
            "over_200ms": sum(x > outlier_s for x in lat),
            # which side waited, for the slowest jobs: the enqueue (its own
            # transaction and commit) or after it (wake-up and claim)
            "slowest": [{k: (round(v * 1000, 1) if k != "id" else v) for k, v in j.items()}
                        for j in worst[:5]]}


def _enqueue_loop(db: str, k: int) -> None:
    """Run inside the tree measured: enqueue k `true` jobs through the engine, one
    at a time with pauses; print [[id, time the enqueue returned], ...]."""
    from queuectl_tui.engine.jobspec import from_mapping
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    queue = Queue(open_database(db))
    sent = []
    for _ in range(k):
        [job_id] = queue.enqueue_many([from_mapping({"command": "true"})])
        sent.append((job_id, time.time()))
        time.sleep(random.uniform(*PICKUP_GAP_S))
    print(json.dumps(sent))


def pickup_main(args: argparse.Namespace, measured: dict[str, Path], work: Path,
                pycache: Path) -> int:
    count = int(args.counts.split(",")[0])
    result: dict[str, Any] = {"k": args.pickup, "workers": count, "rounds": []}
    for rep in range(args.reps):
        for name, tree in measured.items():
            for via in ("engine", "cli"):
                before = load()
                row = {"tree": name, "load": before,
                       **pickup_summary(pickup(tree, work, args.pickup, count, via, pycache,
                                               trace=args.trace))}
                result["rounds"].append(row)
                print(f"round {rep + 1}: {name} by {via}: p50 {row['p50_ms']:.1f} ms, "
                      f"p99 {row['p99_ms']:.1f}, max {row['max_ms']:.1f}, "
                      f"{row['over_200ms']} over 200 ms; after the enqueue returned p99 "
                      f"{row['after_p99_ms']:.1f}, max {row['after_max_ms']:.1f} "
                      f"(load {before:.2f}); slowest "
                      f"{row['slowest'][:3]}", flush=True)
    write_result(args.out, result)
    return 0


def idle(tree: Path, work: Path, count: int, seconds: float, pycache: Path) -> dict[str, Any]:
    """An idle pool of `count` workers started by `worker start` on an empty
    database: the share of one core each worker and the supervisor use over
    `seconds` (heartbeats, checkpoints and the wake-ups they cause included), then
    how long after SIGTERM the last worker and the supervisor are gone."""
    fresh = Fresh(tree, work, pycache, tag="idle")
    pool = fresh.start_pool(count)
    try:
        workers = fresh.wait_idle(pool, count)
        time.sleep(1.0)  # let start-up settle; not a synchronisation
        shares = idle_cpu([pool.pid, *workers], seconds)
        t0 = time.monotonic()
        os.killpg(pool.pid, signal.SIGTERM)
        wait_for("workers gone", lambda: not any(os.path.exists(f"/proc/{w}/stat") and
                                                 _state(w) != "Z" for w in workers),
                 30, poll=0.002)
        workers_gone = time.monotonic() - t0
        pool.wait(60)
        pool_gone = time.monotonic() - t0
    finally:
        if pool.poll() is None:
            stop_pool(pool)
        fresh.drop()
    return {"workers_cpu": [round(shares[w], 5) for w in workers],
            "supervisor_cpu": round(shares[pool.pid], 5),
            "workers_gone_s": round(workers_gone, 3), "pool_gone_s": round(pool_gone, 3)}


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def idle_main(args: argparse.Namespace, measured: dict[str, Path], work: Path,
              pycache: Path) -> int:
    count = int(args.counts.split(",")[0])
    result: dict[str, Any] = {"seconds": args.idle, "workers": count, "rounds": []}
    for rep in range(args.reps):
        for name, tree in measured.items():
            before = load()
            row = {"tree": name, "load": before,
                   **idle(tree, work, count, args.idle, pycache)}
            result["rounds"].append(row)
            print(f"round {rep + 1}: {name}: idle CPU per worker "
                  f"{', '.join(f'{c:.3%}' for c in row['workers_cpu'])}, supervisor "
                  f"{row['supervisor_cpu']:.3%}; after SIGTERM workers gone in "
                  f"{row['workers_gone_s']:.3f} s, pool in {row['pool_gone_s']:.3f} s "
                  f"(load {before:.2f})", flush=True)
    write_result(args.out, result)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--counts", default="2,1", help="worker counts, comma-separated")
    parser.add_argument("--orders", default="enqueue-first,workers-first")
    add_tree_option(parser)
    parser.add_argument("--pickup", type=int, metavar="K",
                        help="instead: pickup latency of K jobs into an idle pool of "
                        "--counts' first size, enqueued by the engine and by the CLI")
    parser.add_argument("--trace", action="store_true",
                        help="with --pickup: strace the enqueuers, so the slowest jobs say "
                        "how long their enqueue spent in fsync and waiting for the lock")
    parser.add_argument("--idle", type=float, metavar="SECONDS",
                        help="instead: CPU of an idle pool of --counts' first size over "
                        "SECONDS, and how soon it is gone after SIGTERM")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    measured = trees(args)
    work = Path(tempfile.mkdtemp(prefix="queuectl-blackbox-"))
    pycache = work / "pycache"
    if args.pickup or args.idle:
        try:
            if args.idle:
                return idle_main(args, measured, work, pycache)
            return pickup_main(args, measured, work, pycache)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    jobs_file = work / "jobs.jsonl"
    jobs_file.write_text('{"command": "true"}\n' * args.jobs)
    runs: dict[str, list[dict[str, Any]]] = {}
    loads = [load()]
    try:
        for rep in range(args.reps):
            for count in (int(c) for c in args.counts.split(",")):
                for order in args.orders.split(","):
                    for name, tree in measured.items():
                        row = one_run(tree, work, jobs_file, args.jobs, count, order, pycache)
                        key = f"{name} {order} x{count}"
                        runs.setdefault(key, []).append(row)
                        print(f"round {rep + 1}: {key}: {row}", flush=True)
            loads.append(load())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = {key: {field: statistics.median(r[field] for r in rows)
                   for field in rows[0]} for key, rows in runs.items()}
    print(json.dumps(table, indent=2))
    write_result(args.out, {"jobs": args.jobs, "reps": args.reps,
                            "trees": {k: str(v) for k, v in measured.items()},
                            "median": table, "runs": runs, "load_avg_1min": loads})
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--enqueue-loop"]:
        _enqueue_loop(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
