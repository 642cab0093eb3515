"""How fast the console opens and refreshes over a big queue.

    python bench/console_bench.py                 # 20,000 jobs: a quick smoke run (CI)
    python bench/console_bench.py --jobs 1000000  # the figure the console is held to

Builds a database with N jobs (96% completed, 2% dead, 1% pending, 0.5% failed,
0.5% running) and one event per job, in one transaction with batched inserts.
Then measures:

- open: a fresh `python` process importing the console and opening it headless
  until the first refresh has been shown (interpreter start and imports included);
- refresh: the database time of one refresh of each view, as the console's
  database thread runs it (header counts, sparkline, worker list, the window of
  rows around the cursor, the selected job's detail), median and worst of 15.

Targets from the issue: open under 2 s, a refresh under 50 ms of database time.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queuectl_tui.console import reads  # noqa: E402
from queuectl_tui.engine import views  # noqa: E402
from queuectl_tui.engine.queue import Queue  # noqa: E402
from queuectl_tui.engine.storage.models import Event, Job  # noqa: E402
from queuectl_tui.engine.storage.opening import open_database  # noqa: E402

PAGE = 30  # rows on screen at 120x36; the console fetches two pages each side
STATES = [("completed", 0.96), ("dead", 0.02), ("pending", 0.01), ("failed", 0.005),
          ("processing", 0.005)]
COMMANDS = ("convert img/{n}.png thumbs/{n}.png", "curl -fsS https://api.example.com/items/{n}",
            "python manage.py reindex --shard {n}", "rsync -a /data/{n} backup:/data/{n}")


def build(path: Path, jobs: int, seed: int = 1) -> float:
    """Fill a new database with `jobs` jobs and their events; returns seconds taken."""
    rng = random.Random(seed)
    opened = open_database(str(path))
    now = time.time()
    started = time.perf_counter()
    names = [s for s, _ in STATES]
    weights = [w for _, w in STATES]
    fields = [Job.id, Job.command, Job.state, Job.attempts, Job.max_retries, Job.priority,
              Job.run_at, Job.created_at, Job.updated_at, Job.started_at, Job.finished_at,
              Job.exit_code, Job.last_error, Job.worker_id]
    ev_fields = [Event.job_id, Event.from_state, Event.to_state, Event.attempt, Event.at]
    batch = 1000
    with opened.db.atomic():
        for start in range(0, jobs, batch):
            rows, events = [], []
            for n in range(start, min(jobs, start + batch)):
                state = rng.choices(names, weights)[0]
                created = now - (jobs - n) * 0.5  # one job every half second, oldest first
                done = state in ("completed", "dead")
                began = created + 1 if state != "pending" else None
                ended = created + 2 if done else None
                rows.append((f"job{n:08d}", COMMANDS[n % 4].format(n=n), state,
                             0 if state == "pending" else 1, 3, n % 5, created, created,
                             ended or created, began, ended,
                             (0 if state == "completed" else 1) if done else None,
                             "exit code 1: boom" if state in ("dead", "failed") else None,
                             "bench-w1" if state == "processing" else None))
                events.append((f"job{n:08d}", "processing" if done else None,
                               state, 1, ended or created))
            Job.insert_many(rows, fields=fields).execute()
            Event.insert_many(events, fields=ev_fields).execute()
    opened.db.execute_sql("ANALYZE")
    seconds = time.perf_counter() - started
    opened.close()
    return seconds


def refresh_loads(queue: Queue) -> dict[str, object]:
    """What each view asks for on a refresh (see the screens' `loader`)."""
    span = PAGE * 2
    middle = views.job_window(views.JobQuery(), views.START, 0, 1).rows[0]["seq"] // 2
    return {
        "jobs (top, detail)": lambda q: (
            views.job_window(views.JobQuery(), views.START, span, span + PAGE),
            reads.job_detail(q, "job00000001", None)),
        "jobs (middle of the list)": lambda q: views.job_window(
            views.JobQuery(), (middle,), span, span + PAGE),
        "jobs, pending tab": lambda q: views.job_window(
            views.JobQuery(states=("pending",)), views.START, span, span + PAGE),
        "jobs, run order": lambda q: views.job_window(
            views.JobQuery(sort="run"), views.START, span, span + PAGE),
        "jobs, cmd:curl filter": lambda q: views.job_window(
            views.JobQuery(commands=("curl",)), views.START, span, span + PAGE),
        "dlq": lambda q: views.job_window(
            views.JobQuery(states=("dead",)), views.START, span, span + PAGE),
        "history": lambda q: views.event_window(views.EventQuery(), views.START, span,
                                                span + PAGE),
        "workers": lambda q: reads.workers(q, False),
    }


def measure_refresh(path: Path, runs: int = 15) -> list[tuple[str, float, float]]:
    queue = Queue(open_database(str(path)))
    counter = views.StateCounts()
    t = time.perf_counter()
    reads.summary(queue, counter)
    first = (time.perf_counter() - t) * 1000
    results = [("header, first (full count)", first, first)]
    header = []
    for _ in range(runs):
        t = time.perf_counter()
        reads.summary(queue, counter)
        header.append((time.perf_counter() - t) * 1000)
    results.append(("header, later (counts from events)", statistics.median(header),
                    max(header)))
    for name, load in refresh_loads(queue).items():
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            reads.refresh(queue, counter, load)
            times.append((time.perf_counter() - t) * 1000)
        results.append((f"refresh: {name}", statistics.median(times), max(times)))
    queue.opened.close()
    return results


OPEN_SCRIPT = """
import time, asyncio, sys
t0 = time.perf_counter()
from queuectl_tui.console.app import ConsoleApp
imported = time.perf_counter() - t0
async def main():
    app = ConsoleApp(sys.argv[1], refresh_interval=None)
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.screen.query_one("#table")
        deadline = time.perf_counter() + 60
        while table.row_count == 0 and time.perf_counter() < deadline:
            await pilot.pause(0.01)
        assert table.row_count > 0, "no rows shown"
        print(f"{imported:.3f} {time.perf_counter() - t0:.3f} {table.row_count}")
asyncio.run(main())
"""


def measure_open(path: Path) -> tuple[float, float, float]:
    """(imports, open until first rows shown, whole process) in seconds.

    With `.pyc` files written, as an installed queuectl has them (this sandbox
    sets PYTHONDONTWRITEBYTECODE, which would recompile every module each time):
    the first run writes them and is not counted."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for attempt in range(2):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", OPEN_SCRIPT, str(path)],
                              capture_output=True, text=True, env=env,
                              cwd=str(Path(__file__).resolve().parent.parent))
        total = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"the console did not open: {done.stderr.strip()[-2000:]}")
    out = done.stdout.split()
    return float(out[0]), float(out[1]), total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="console open and refresh times")
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs in the database")
    parser.add_argument("--db", type=Path, help="reuse or keep this database file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if not path.exists():
            seconds = build(path, args.jobs)
            print(f"built {args.jobs:,} jobs (+{args.jobs:,} events) in {seconds:.1f} s "
                  f"({path.stat().st_size / 1e6:.0f} MB)")
        else:
            print(f"using {path}")
        imports, opened, total = measure_open(path)
        print(f"open: {opened:.2f} s to first rows in a new process "
              f"(imports {imports:.2f} s; process with exit {total:.2f} s)   target < 2 s")
        for name, median, high in measure_refresh(path):
            print(f"{name:<40} median {median:6.1f} ms   worst {high:6.1f} ms")
        print("each refresh line is one whole refresh (header included)   target < 50 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
