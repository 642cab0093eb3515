"""Chaos run: real worker pools, real kills, then check that nothing was lost.

    python -m tests.chaos_run --jobs 10000 --workers 8 --pools 2            # load
    python -m tests.chaos_run --jobs 5000 --kill-every 0.5                  # SIGKILL chaos
    python -m tests.chaos_run --jobs 2000 --stop-after 3                    # graceful stop

    python -m tests.chaos_run --jobs 500 --deps 0.3 --late-pairs 40 --keyed 60 --hooks

Every job appends its id to a file. Invariants checked at the end: every job
completed exactly once in the record (one processing->completed event), none
left pending/processing/failed/dead, every id ran at least once, and
`PRAGMA integrity_check` is ok. With kills: the worst delay from a kill to the
rescue of the job it held. Exits 1 if any invariant fails. Small defaults run in
CI through tests/workers/test_chaos.py; the README quotes a large run.

The mix (tests/chaos_mix.py) adds the features that keep state between jobs:
dependencies (some enqueued `--after` a job that is finishing at that moment),
unique keys enqueued from racing processes, and a finish hook on every job.
Their invariants: none left blocked, no dependent started before what it
waits for completed, no key held by two unfinished jobs at any sampled moment,
and every finished job's hook ran at least once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from queuectl_tui.workers.signals import LocalProcesses
from tests.chaos_mix import Mix, check_mix


def start_pool(db: str, count: int, log: Path | None = None) -> subprocess.Popen:
    """A `worker start` process group; its log lines go to `log` (appended), so a
    failed run can say what the pools saw."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "queuectl_tui", "worker", "start", "--db", db,
             "--count", str(count)],
            stdout=out, stderr=out, start_new_session=True)
    finally:
        if log:
            out.close()


def run(args: argparse.Namespace) -> dict:
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="queuectl-chaos-"))
    db = getattr(args, "db", None) or str(workdir / "chaos.db")
    ran = workdir / "ran.txt"
    rng = random.Random(args.seed)
    queue = Queue(open_database(db), processes=LocalProcesses())
    queue.config_set("lease-seconds", args.lease)
    queue.config_set("max-retries", 1000)  # kills must never push a job into the DLQ
    queue.config_set("durability", args.durability)
    mix = Mix(db, workdir, ran, rng, late_pairs=getattr(args, "late_pairs", 0),
              keyed=getattr(args, "keyed", 0), hooks=getattr(args, "hooks", False))
    mix.prepare(queue)
    deps = getattr(args, "deps", 0.0)
    specs = [JobSpec(id=f"c{i}", command=f"echo c{i} >> {ran}" + (
        "; exec >/dev/null 2>&1" if args.close_output and rng.random() < args.close_output
        else "") + (
        f"; sleep {rng.uniform(0, 2 * args.job_ms) / 1000:.3f}" if args.job_ms else ""),
        after=(f"c{rng.randrange(max(0, i - 50), i)}",) if i and rng.random() < deps else ())
        for i in range(args.jobs)]
    queue.enqueue_many(specs)
    per_pool = max(1, args.workers // args.pools)
    pools = [start_pool(db, per_pool, workdir / f"pool{n}.log") for n in range(args.pools)]
    started = time.time()
    mix.start()
    kills: list[tuple[float, set[str], str]] = []
    stop_at = started + args.stop_after if args.stop_after else None
    stopped_at = None
    next_kill = started + args.kill_every if args.kill_every else None
    next_hold = started + args.hold_every if args.hold_every else None
    holders: list[subprocess.Popen] = []
    deadline = started + args.timeout
    while time.time() < deadline:
        counts = queue.counts()
        if mix.done() and counts["completed"] == args.jobs + mix.created():
            break
        if mix.done() and not any(counts[s] for s in ("pending", "processing", "failed")):
            break  # what is left is blocked with nothing to wait for: stuck (the check says)
        now = time.time()
        if stop_at and now >= stop_at and stopped_at is None:
            stopped_at = now
            pools[0].send_signal(signal.SIGTERM)   # one pool by signal ...
            queue.stop_workers()                    # ... the rest as `worker stop` does
            for pool in pools:
                pool.wait(120)
            break
        if next_kill and now >= next_kill:
            next_kill = now + args.kill_every
            kills.append(_kill_something(queue, pools, rng, db, per_pool, workdir))
        if next_hold and now >= next_hold:  # a long writer: a bulk enqueue, a backup
            next_hold = now + args.hold_every
            holders.append(_hold_write_lock(db, args.hold_seconds))
        mix.sample()
        time.sleep(0.05)
    mix.stop()
    if stopped_at is None:
        mix.wait_for_hooks(deadline)
    duration = time.time() - started
    for holder in holders:
        holder.wait(120)
    if stopped_at is None:
        for pool in pools:
            if pool.poll() is None:
                pool.send_signal(signal.SIGTERM)
        for pool in pools:
            pool.wait(120)
    report = _check(db, ran, args.jobs + mix.created(), kills, stopped_at)
    if mix.active:
        report.update(check_mix(_Reader(db), mix, ran, stopped_at))
        report["ok"] = report["ok"] and report["mix_ok"]
    report.update(jobs=args.jobs, workers=per_pool * args.pools, pools=args.pools,
                  kills=len(kills), long_writes=len(holders), seconds=round(duration, 2),
                  jobs_per_second=round(report["completed"] / duration, 1),
                  lease_seconds=args.lease, durability=args.durability, dir=str(workdir))
    queue.opened.close()
    return report


HOLD = ("import sqlite3, sys, time\n"
        "if sys.argv[1].startswith('postgres'):\n"
        "    import psycopg2\n"
        "    c = psycopg2.connect(sys.argv[1])\n"
        "    c.cursor().execute('LOCK TABLE job IN EXCLUSIVE MODE')  # reads go on, writes wait\n"
        "    time.sleep(float(sys.argv[2]))\n"
        "    c.commit()\n"
        "else:\n"
        "    c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n"
        "    c.execute('BEGIN IMMEDIATE')\n"
        "    time.sleep(float(sys.argv[2]))\n"
        "    c.execute('COMMIT')\n")


def _hold_write_lock(db: str, seconds: float) -> subprocess.Popen:
    """Another process holding SQLite's write lock for a while (what a long
    writer does): live jobs must not be rescued meanwhile."""
    return subprocess.Popen([sys.executable, "-c", HOLD, db, str(seconds)])


def _kill_something(queue: Queue, pools: list, rng: random.Random, db: str,
                    per_pool: int, workdir: Path) -> tuple[float, set[str], str]:
    running = {pool.pid for pool in pools if pool.poll() is None}
    # Only workers of pools still running: a killed pool's workers look alive
    # until their lease runs out, and "killing" them again would prove nothing.
    live = [w for w in queue.live_workers() if w["supervisor_pid"] in running]
    if rng.random() < 0.2 and pools:  # sometimes a whole `worker start` process group
        i = rng.randrange(len(pools))
        victims = {w["id"] for w in live if w["supervisor_pid"] == pools[i].pid}
        try:
            os.killpg(pools[i].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pools[i].wait()
        pools[i] = start_pool(db, per_pool, workdir / f"pool{i}.log")
        return time.time(), victims, "pool"
    if not live:
        return time.time(), set(), "worker"
    victim = rng.choice(live)
    try:
        os.kill(victim["pid"], signal.SIGKILL)
    except ProcessLookupError:
        pass
    return time.time(), {victim["id"]}, "worker"


class _Reader:
    """The few read-only statements the check runs, on SQLite or PostgreSQL."""

    def __init__(self, db: str) -> None:
        self.pg = db.startswith(("postgresql://", "postgres://"))
        if self.pg:
            import psycopg2
            self.conn = psycopg2.connect(db)
        else:
            self.conn = sqlite3.connect(db)

    def all(self, sql: str, params: tuple = ()) -> list[tuple]:
        cur = self.conn.cursor()
        cur.execute(sql.replace("?", "%s") if self.pg else sql, params)
        return cur.fetchall()

    def integrity(self) -> str:
        return "ok" if self.pg else self.all("PRAGMA integrity_check")[0][0]


HANDED_BACK = "handed back unstarted"  # Queue.release's note


def _check(db: str, ran: Path, jobs: int, kills: list, stopped_at: float | None) -> dict:
    conn = _Reader(db)
    counts = dict(conn.all("SELECT state, COUNT(*) FROM job GROUP BY state"))
    completions = Counter(r[0] for r in conn.all(
        "SELECT job_id FROM event WHERE from_state='processing' AND to_state='completed'"))
    runs = Counter(ran.read_text().split()) if ran.exists() else Counter()
    taken_back = conn.all(
        "SELECT worker_id, at, job_id, note FROM event WHERE from_state='processing' "
        "AND to_state IN ('pending', 'dead') AND note IS NOT NULL")
    # A job claimed in the same commit as the last outcome, when the stop came
    # during that commit, is handed back unstarted by its own worker: not a rescue.
    handed_back = [r for r in taken_back if r[3].startswith(HANDED_BACK)]
    rescues = [r for r in taken_back if not r[3].startswith(HANDED_BACK)]
    delays: dict[str, list[float]] = {"worker": [], "pool": []}
    for worker_id, at, _job, _note in rescues:
        killed = [(t, kind) for t, ids, kind in kills if worker_id in ids and t <= at]
        if killed:
            t, kind = max(killed)
            delays[kind].append(at - t)
    every = delays["worker"] + delays["pool"]
    claimed_after_stop = 0
    if stopped_at is not None:
        claimed_after_stop = conn.all(
            "SELECT COUNT(*) FROM event WHERE to_state='processing' AND at > ?",
            (stopped_at + 0.5,))[0][0]
    report = {
        "completed": counts.get("completed", 0),
        "pending": counts.get("pending", 0),
        "stuck_processing": counts.get("processing", 0),
        "failed": counts.get("failed", 0), "dead": counts.get("dead", 0),
        "completed_twice": sum(1 for n in completions.values() if n > 1),
        "never_ran": sum(1 for job_id, in conn.all("SELECT id FROM job")
                         if job_id not in runs) if stopped_at is None else None,
        "reruns": sum(n - 1 for n in runs.values()),
        "rescues": len(rescues),
        "handed_back_unstarted": len(handed_back),
        "rescue_notes": [f"{job} (worker {worker}): {note}" for worker, _, job, note in rescues[:5]],
        "worst_rescue_delay_s": round(max(every), 2) if every else None,
        "worst_rescue_after_worker_kill_s": round(max(delays["worker"]), 2)
        if delays["worker"] else None,
        "worst_rescue_after_pool_kill_s": round(max(delays["pool"]), 2)
        if delays["pool"] else None,
        "kills_of_whole_pools": sum(1 for _, _, kind in kills if kind == "pool"),
        "claimed_after_stop": claimed_after_stop if stopped_at is not None else None,
        "integrity_check": conn.integrity(),
    }
    conn.conn.close()
    lost = jobs - report["completed"] - (report["pending"] if stopped_at else 0)
    report["lost"] = lost
    report["ok"] = (lost == 0 and report["stuck_processing"] == 0
                    and report["completed_twice"] == 0 and report["failed"] == 0
                    and report["dead"] == 0 and report["integrity_check"] == "ok"
                    and (stopped_at is not None or report["never_ran"] == 0)
                    and not report["claimed_after_stop"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--workers", type=int, default=8, help="in total, over all pools")
    parser.add_argument("--pools", type=int, default=2, help="`worker start` processes")
    parser.add_argument("--kill-every", type=float, default=0.0, metavar="S")
    parser.add_argument("--stop-after", type=float, default=0.0, metavar="S")
    parser.add_argument("--job-ms", type=float, default=0.0, help="mean job sleep, ms")
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--close-output", type=float, default=0.0, metavar="FRACTION",
                        help="this share of jobs closes stdout/stderr before sleeping")
    parser.add_argument("--hold-every", type=float, default=0.0, metavar="S",
                        help="every S seconds another process holds the write lock ...")
    parser.add_argument("--hold-seconds", type=float, default=3.0, metavar="S",
                        help="... for this long")
    parser.add_argument("--durability", default="normal", choices=("full", "normal"))
    parser.add_argument("--deps", type=float, default=0.0, metavar="FRACTION",
                        help="this share of jobs waits (--after) for an earlier one")
    parser.add_argument("--late-pairs", type=int, default=0, metavar="N",
                        help="N pairs A, B --after A enqueued by the CLI as A finishes")
    parser.add_argument("--keyed", type=int, default=0, metavar="N",
                        help="N rounds of 3 racing `enqueue --unique-key --if-absent`")
    parser.add_argument("--hooks", action="store_true",
                        help="a finish hook on every job; check each ran at least once")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", help="work folder (default: a new temporary one)")
    parser.add_argument("--db", help="a postgresql:// URL of an empty database "
                                     "(default: a new SQLite file in the work folder)")
    report = run(parser.parse_args(argv))
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
