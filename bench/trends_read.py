"""What does the Trends view's read cost at 1,000,000 events?

    python bench/trends_read.py                       # 500,000 jobs, 1,000,000 events, SQLite
    python bench/trends_read.py --jobs 50000 --rounds 3
    python bench/trends_read.py --db postgresql://postgres@127.0.0.1:5432/bench_trends
    python bench/trends_read.py --db /tmp/t.db --no-build   # measure a database built before

Builds a database of N jobs in four queues, each with a claim and a finish
event (2N events: 96% completed, 4% dead) and one attempt record, every run
ending within the last 24 hours, evenly: the worst case for the 24h span, which
then holds N finishing events. Then times `engine.trends.read` for each span,
as the console's slow thread runs it: with the caps (MAX_EVENTS, MAX_ATTEMPTS)
and, for comparison, with no cap. Then the Jobs list's first page under the
filter `since:1h` (jobs created in the last hour: the newest page stops early)
and under a since: that matches nothing (every job is looked at: the worst
case). Prints the median and the worst of the rounds.
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

from queuectl_tui.engine import trends, views  # noqa: E402
from queuectl_tui.engine.storage.location import is_postgres_url  # noqa: E402
from queuectl_tui.engine.storage.models import Attempt, Event, Job  # noqa: E402
from queuectl_tui.engine.storage.opening import open_database  # noqa: E402

QUEUES = ("default", "mail", "reports", "thumbnails")
BATCH = 2000
NO_CAP = 10**12


def build(target: str, jobs: int, now: float) -> float:
    """Fill a new database; returns the seconds it took."""
    opened = open_database(target)
    started = time.perf_counter()
    job_fields = [Job.id, Job.command, Job.state, Job.attempts, Job.max_retries, Job.run_at,
                  Job.created_at, Job.updated_at, Job.started_at, Job.finished_at, Job.queue]
    ev_fields = [Event.job_id, Event.from_state, Event.to_state, Event.attempt, Event.at]
    at_fields = [Attempt.job_id, Attempt.number, Attempt.started_at, Attempt.ended_at,
                 Attempt.exit_code]
    step = 86400.0 / jobs
    with opened.db.atomic():
        for first in range(0, jobs, BATCH):
            rows, events, attempts = [], [], []
            for n in range(first, min(jobs, first + BATCH)):
                job_id = f"job{n:08d}"
                ended = now - 86400.0 + (n + 1) * step
                began = ended - (0.05 + (n % 40) * 0.1)
                state = "dead" if n % 25 == 0 else "completed"
                rows.append((job_id, "true", state, 1, 0, began, began, ended, began, ended,
                             QUEUES[n % len(QUEUES)]))
                events.append((job_id, "pending", "processing", 1, began))
                events.append((job_id, "processing", state, 1, ended))
                attempts.append((job_id, 1, began, ended, 0 if state == "completed" else 1))
            Job.insert_many(rows, fields=job_fields).execute()
            Event.insert_many(events, fields=ev_fields).execute()
            Attempt.insert_many(attempts, fields=at_fields).execute()
    opened.db.execute_sql("ANALYZE")
    seconds = time.perf_counter() - started
    opened.close()
    return seconds


def measure(target: str, now: float, rounds: int) -> None:
    opened = open_database(target)
    events = opened.db.execute_sql("SELECT COUNT(*) FROM event").fetchone()[0]
    print(f"{events:,} events, {target if is_postgres_url(target) else 'SQLite'}")
    for span in trends.SPANS:
        for label, caps in (("capped", {}), ("no cap", {"max_events": NO_CAP,
                                                        "max_attempts": NO_CAP})):
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                found = trends.read(opened.db, now, span, **caps)
                times.append(time.perf_counter() - t0)
            total = found.total
            assert total is not None
            counted = total.done + total.failures
            print(f"  {span:>3} {label:<7} median {statistics.median(times) * 1000:7.1f} ms, "
                  f"worst {max(times) * 1000:7.1f} ms  (runs counted {counted:,},"
                  f" durations {total.runs:,}, capped: counts "
                  f"{'yes' if found.capped_from else 'no'}, durations "
                  f"{'yes' if found.durations_capped else 'no'})")
    for label, since, at in (("since:1h, first page", 3600.0, now),
                             ("since:1m matching none", 60.0, now + 7200.0)):
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            rows = views.job_window(views.JobQuery(since=since), views.START, 0, 60,
                                    now=at).rows
            times.append(time.perf_counter() - t0)
        print(f"  jobs {label:<24} median {statistics.median(times) * 1000:7.1f} ms, "
              f"worst {max(times) * 1000:7.1f} ms  ({len(rows)} rows)")
    opened.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", help="a SQLite path or PostgreSQL URL (default: a temp file)")
    parser.add_argument("--no-build", action="store_true", help="measure --db as it is")
    args = parser.parse_args()
    now = 1_900_000_000.0
    with tempfile.TemporaryDirectory() as tmp:
        target = args.db or os.path.join(tmp, "trends.db")
        if not (args.no_build and args.db):
            print(f"built {args.jobs:,} jobs in {build(target, args.jobs, now):.1f} s")
        measure(target, now, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
