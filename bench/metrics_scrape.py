"""What does a metrics scrape cost at 1,000,000 jobs?

    python bench/metrics_scrape.py                 # 1,000,000 jobs, SQLite, 5 rounds
    python bench/metrics_scrape.py --jobs 100000 --rounds 3
    python bench/metrics_scrape.py --db postgresql://postgres@127.0.0.1:5432/bench_metrics
    python bench/metrics_scrape.py --db /tmp/1m.db     # keep the file; later runs reuse it

Builds the database with the engine's bulk enqueue (`Queue.enqueue_many`, four
queues), then gives it a history with plain SQL, as if workers had run for a
while: 90% of the jobs completed, 1% dead, 1% cancelled, 1% failed waiting for
a retry, the rest pending; attempt records and claim events for the newest
SAMPLE_ROWS runs (the scrape's window), finished-job totals in `meta` as if
retention had pruned some. Then it times, per round: one in-process collect
(`engine.metrics.exposition`, the work a pool's /metrics does per scrape) and
one `queuectl metrics` process (interpreter start and imports included, modules
compiled as installed), and prints the median and the worst.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from queuectl_tui.engine import metrics  # noqa: E402
from queuectl_tui.engine.jobspec import from_mapping  # noqa: E402
from queuectl_tui.engine.queue import Queue  # noqa: E402
from queuectl_tui.engine.storage.opening import open_database  # noqa: E402

QUEUES = ("default", "mail", "reports", "thumbnails")
CHUNK = 100_000


def build(target: str, jobs: int) -> Queue:
    queue = Queue(open_database(target))
    db = queue.db
    started = time.monotonic()
    for start in range(0, jobs, CHUNK):
        n = min(CHUNK, jobs - start)
        queue.enqueue_many([from_mapping({"command": "true", "queue": QUEUES[i % len(QUEUES)]})
                            for i in range(start, start + n)], default_cwd="/")
    print(f"enqueued {jobs:,} jobs in {time.monotonic() - started:.1f} s", flush=True)
    now = time.time()
    p = db.param
    with db.atomic():
        # History: by seq, so each state is spread over every queue.
        db.execute_sql(f"UPDATE job SET state = 'completed', attempts = 1, runs = 1, "
                       f"started_at = run_at + 0.5, finished_at = run_at + 1.0 "
                       f"WHERE seq - (seq / 100) * 100 < 90")
        for state, rest in (("dead", 90), ("cancelled", 91), ("failed", 92)):
            db.execute_sql(f"UPDATE job SET state = {p}, attempts = 1, runs = 1, "
                           f"started_at = run_at + 0.5, finished_at = run_at + 1.0 "
                           f"WHERE seq - (seq / 100) * 100 = {rest}", (state,))
        # (seq - seq / n * n: the remainder, written the same for both backends)
        db.execute_sql(f"UPDATE job SET run_at = {p} + (seq - (seq / 600) * 600) "
                       "WHERE state = 'failed'", (now,))
        # The newest runs, inside the scrape's window: attempt rows and claim events.
        recent = db.execute_sql(
            f"SELECT id, run_at FROM job WHERE state = 'completed' ORDER BY seq DESC "
            f"LIMIT {metrics.SAMPLE_ROWS}").fetchall()
        for i, (job_id, _) in enumerate(recent):
            at = now - 300 + i * 0.01
            db.execute_sql(f"INSERT INTO attempt (job_id, number, started_at, ended_at, "
                           f"exit_code, reason) VALUES ({p}, 1, {p}, {p}, 0, 'exit')",
                           (job_id, at, at + 0.02 * (i % 50)))
            db.execute_sql(f"INSERT INTO event (job_id, from_state, to_state, attempt, at) "
                           f"VALUES ({p}, 'pending', 'processing', 1, {p})", (job_id, at))
            db.execute_sql(f"UPDATE job SET started_at = {p}, run_at = {p} WHERE id = {p}",
                           (at, at - 0.05 * (i % 20), job_id))
        for q in QUEUES:
            db.execute_sql(f"INSERT INTO meta (key, value) VALUES ({p}, '12345') "
                           "ON CONFLICT (key) DO NOTHING", (f"removed.completed.{q}",))
    db.execute_sql("ANALYZE")
    if queue.backend.name == "sqlite":
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"history written in {time.monotonic() - started:.1f} s in all", flush=True)
    return queue


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--db", help="a PostgreSQL URL (its tables are emptied first), or an "
                                 "SQLite file to build (kept; reused as it is if it exists); "
                                 "default: a new SQLite file in a temporary folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        target = args.db or str(Path(tmp) / "bench.db")
        postgres = target.startswith("postgres")
        if postgres:
            _empty_postgres(args.db)
        # Compiled modules, as an installed package has them: no
        # PYTHONDONTWRITEBYTECODE, a cache folder of this run's, one warm-up run.
        env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
               "QUEUECTL_DB": target, "PYTHONPATH": str(ROOT),
               "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"),
               "XDG_DATA_HOME": str(Path(tmp) / "data")}
        if not postgres and Path(target).exists():
            queue = Queue(open_database(target))
            _refresh(queue.db)
        else:
            queue = build(target, args.jobs)
        subprocess.run([sys.executable, "-m", "queuectl_tui", "metrics"], env=env,
                       check=True, stdout=subprocess.DEVNULL)  # warm-up: writes the bytecode
        inproc, command = [], []
        size = 0
        for _ in range(args.rounds):
            started = time.perf_counter()
            size = len(metrics.exposition(queue))
            inproc.append(time.perf_counter() - started)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "queuectl_tui", "metrics"], env=env,
                           check=True, stdout=subprocess.DEVNULL)
            command.append(time.perf_counter() - started)
        where = "PostgreSQL" if postgres else "SQLite"
        print(f"{args.jobs:,} jobs on {where}, {args.rounds} rounds, {size:,} bytes of output")
        for name, times in (("in-process collect (a pool's /metrics)", inproc),
                            ("`queuectl metrics` (a process)", command)):
            print(f"  {name}: median {statistics.median(times) * 1000:.0f} ms, "
                  f"worst {max(times) * 1000:.0f} ms")
        queue.opened.close()
    return 0


def _refresh(db) -> None:
    """A reused file: move the recent runs back into the scrape's window (they
    ended up to 100 s ago), as a running queue's would be."""
    last = db.execute_sql("SELECT MAX(ended_at) FROM attempt").fetchone()[0]
    d = time.time() - 100 - last
    p = db.param
    with db.atomic():
        db.execute_sql(f"UPDATE attempt SET started_at = started_at + {p}, "
                       f"ended_at = ended_at + {p}", (d, d))
        db.execute_sql(f"UPDATE event SET at = at + {p} WHERE to_state = 'processing'", (d,))
        db.execute_sql(f"UPDATE job SET started_at = started_at + {p}, run_at = run_at + {p} "
                       "WHERE id IN (SELECT job_id FROM attempt)", (d, d))


def _empty_postgres(url: str) -> None:
    opened = open_database(url)
    for table in ("job", "event", "attempt", "worker", "batch"):
        opened.db.execute_sql(f"DELETE FROM {table}")
    opened.db.execute_sql(f"DELETE FROM meta WHERE key LIKE {opened.db.param} "
                          f"OR key LIKE {opened.db.param}", ("removed.%", "pruned.%"))
    opened.close()


if __name__ == "__main__":
    raise SystemExit(main())
