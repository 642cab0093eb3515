"""What do the DLQ's failure groups cost at 100,000 dead jobs?

    python bench/dlq_groups.py                       # 100,000 dead of 1,000,000 jobs, SQLite
    python bench/dlq_groups.py --dead 10000 --total 100000
    python bench/dlq_groups.py --db postgresql://postgres@127.0.0.1:5432/bench_dlq
    python bench/dlq_groups.py --db /tmp/d.db --no-build   # measure a database built before
    python bench/dlq_groups.py --db /tmp/d.db --no-build --sign   # and the v9 signing

Builds a database of TOTAL jobs of which DEAD are dead, in three failure
groups and two queues (rows written with plain SQL, as a bulk enqueue would:
the workers' path is not what is measured). Then times, as `dlq groups`,
`dlq list --group` and `dlq retry --group` run them: the grouping read
(`Queue.dlq_groups`), one group named by the start of its id
(`Queue.dlq_group`), and finding a group's members (the read a retry or
delete of the group starts with). With `--sign`, the v9 migration's signing
of dead jobs that have no signature (every dead job's, with a realistic
stderr tail), once. Prints the median and the worst of the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queuectl_tui.engine import failure_groups  # noqa: E402
from queuectl_tui.engine.queue import Queue  # noqa: E402
from queuectl_tui.engine.storage.models import Job  # noqa: E402
from queuectl_tui.engine.storage.opening import open_database  # noqa: E402

SIGNATURES = ("exit 2: error: file <path> not found",
              "exit 7: timeout after <n>ms connecting to <ip>", "exit 1: KeyError: <q>")
COLUMNS = ("id", "command", "state", "attempts", "max_retries", "priority", "run_at",
           "created_at", "updated_at", "finished_at", "queue", "exit_code", "failure_sig",
           "stderr_tail", "last_error")
BATCH = 2000


def build(target: str, dead: int, total: int) -> None:
    opened = open_database(target)
    db, p = opened.db, opened.db.param
    now = time.time() - total * 0.01
    every = max(1, total // max(1, dead))
    rows, made = [], 0
    started = time.perf_counter()
    with db.atomic():
        for i in range(total):
            is_dead = made < dead and i % every == 0
            made += is_dead
            k = i % 3
            rows.append((f"job{i}", "false", "dead" if is_dead else "completed", 1, 0, 0, now,
                         now + i * 0.01, now + i * 0.01, now + i * 0.01,
                         "etl" if i % 4 == 0 else "default", 2 + k if is_dead else 0,
                         SIGNATURES[k] if is_dead else None,
                         f"loading {i} rows\nerror: file /tmp/x{i}.txt not found\n"
                         if is_dead else None, f"exit code {2 + k}" if is_dead else None))
            if len(rows) == BATCH or i == total - 1:
                values = ",".join(["(" + ",".join([p] * len(COLUMNS)) + ")"] * len(rows))
                db.execute_sql(f"INSERT INTO job ({', '.join(COLUMNS)}) VALUES {values}",
                               [v for row in rows for v in row])
                rows = []
    if opened.backend.name == "postgresql":
        db.execute_sql("VACUUM ANALYZE job")  # as autovacuum would have by now
    print(f"built {total:,} jobs ({made:,} dead) in {time.perf_counter() - started:.1f} s")
    opened.close()


def timed(name: str, fn, rounds: int) -> None:
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        took.append((time.perf_counter() - started) * 1000)
    print(f"{name:<44} median {statistics.median(took):7.1f} ms   worst {max(took):7.1f} ms")


def measure(target: str, rounds: int) -> None:
    opened = open_database(target)
    queue = Queue(opened)
    groups = queue.dlq_groups()
    print(f"{len(groups)} groups: " + ", ".join(f"{g.group} {g.count:,}" for g in groups))
    biggest = groups[0]
    timed("dlq groups (Queue.dlq_groups)", queue.dlq_groups, rounds)
    timed("one group by id prefix (Queue.dlq_group)", lambda: queue.dlq_group(biggest.group[:4]),
          rounds)
    members = failure_groups.members(biggest.signature)
    timed(f"a group's members ({biggest.count:,}: retry's read)",
          lambda: list(Job.select(Job.seq, Job.id).where(members).order_by(Job.seq).tuples()),
          rounds)
    opened.close()


def sign(target: str) -> None:
    """The v9 migration's signing, timed once: every dead job unsigned, the
    schema version put back to 8, the database opened."""
    opened = open_database(target)
    opened.db.execute_sql("UPDATE job SET failure_sig = NULL WHERE state = 'dead'")
    opened.db.execute_sql("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    opened.close()
    started = time.perf_counter()
    open_database(target).close()
    print(f"v9 signing of every dead job: {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a path or URL (default: a new file in a temp folder)")
    parser.add_argument("--dead", type=int, default=100_000)
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--sign", action="store_true", help="also time the v9 signing")
    args = parser.parse_args()
    target = args.db or os.path.join(tempfile.mkdtemp(prefix="dlq-groups-"), "q.db")
    if not args.no_build:
        build(target, args.dead, args.total)
    measure(target, args.rounds)
    if args.sign:
        sign(target)


if __name__ == "__main__":
    main()
