"""Make the console screenshots in this folder from a demo database.

    python screenshots/make_screenshots.py            # writes screenshots/*.svg
    python screenshots/make_screenshots.py --out DIR

The database is built through the engine with a fake clock (the demo jobs,
plus a few minutes of finished, failed and dead runs and two workers), so the
pictures are the same on every run. Run it again when the console changes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queuectl_tui.clock import FakeClock, Ids  # noqa: E402
from queuectl_tui.console.app import ConsoleApp  # noqa: E402
from tests.console.conftest import exit_code_of  # noqa: E402  (EXIT agrees with the error)
from queuectl_tui.console.pilot import press_and_settle, settle  # noqa: E402
from queuectl_tui.demo import enqueue_demo  # noqa: E402
from queuectl_tui.engine import logs, registry, schedules  # noqa: E402
from queuectl_tui.engine.storage.opening import open_database  # noqa: E402
from queuectl_tui.engine.jobspec import JobSpec  # noqa: E402
from queuectl_tui.engine.queue import Queue  # noqa: E402

SIZE = (120, 36)
START = 1_800_000_000.0
HOST = "demo-box"
WORKERS = ("demo-box-a1f3c2", "demo-box-7be019")

# view file -> keys pressed after the console opens
VIEWS = {
    "jobs": ("j",) * 12,  # the running job: its output follows in the detail pane
    "workers": ("2",),
    "dlq": ("3", "space"),
    "dlq-groups": ("3", "f"),  # the DLQ by failure
    "history": ("4",),
    "config": ("5",),
    "queues": ("6",),
    "schedules": ("7",),
    "trends": ("8", "["),  # the last 5 minutes: the demo is a few minutes old
    "enqueue": ("n", *"curl -fsS https://example.com/health", "tab", "tab", *"5", "tab",
                *"10", "tab", *"30s"),
    "help": ("question_mark",),
}


def _outcome(command: str) -> tuple[str | None, str]:
    """How a demo command 'ends' in the pictures: (error or None, output)."""
    if "exit 3" in command:
        return "exit code 3: this fails", ""
    if "no-such-command" in command:
        return "exit code 127: sh: 1: no-such-command: not found", ""
    if command.startswith("sleep 30"):
        return "timed out after 2s", ""
    if "improper" in command:
        return "exit code 1: convert: improper image header", ""
    return None, "ok\n"


def _drain(q: Queue, clock: FakeClock, rng: random.Random, keep_running: str) -> str | None:
    """Run every due job to its end (retries included), leaving one running."""
    running = None
    for n in range(500):
        worker = WORKERS[n % 2]
        claimed = q.claim(worker, 30)
        if claimed is None:
            due = q.next_run_at()
            if due is None or due > clock.now() + 60:
                return running
            clock.advance(max(0.1, due - clock.now()))
            continue
        if keep_running in claimed.command and running is None:
            running = claimed.id
            fd = logs.open_for_append(q.opened.log_dir, claimed.seq)
            os.write(fd, b"".join(f"step {i}/5\n".encode() for i in range(1, 4)))
            os.close(fd)
            registry.beat(worker, state="busy", now=clock.now(), job_id=claimed.id,
                          job_started_at=clock.now())
            continue
        error, out = _outcome(claimed.command)
        started = clock.now()  # the run's own start, as a worker records it
        clock.advance(rng.uniform(0.3, 2.5))
        # What the job printed is the error's part after "exit code N: " (a
        # timeout printed nothing): the DLQ's groups are made from it.
        printed = error.split(": ", 1)[1] + "\n" if error and error.startswith("exit") else ""
        q.finish_and_claim(claimed, worker, exit_code=exit_code_of(error), error=error,
                           stdout_tail=out, stderr_tail=printed, started_at=started,
                           ended="timeout" if error and "timed out" in error else "exit")
        clock.advance(rng.uniform(0.2, 2.0))
    return running


def build_demo(path: Path, clock: FakeClock) -> None:
    """A queue a few minutes into a busy day: history, a DLQ, one job running."""
    q = Queue(open_database(str(path)), clock=clock, ids=Ids(random.Random(2026)))
    for i, w in enumerate(WORKERS):
        registry.register(w, host=HOST, pid=31400 + i, supervisor_pid=31399, now=clock.now())
    rng = random.Random(7)
    q.enqueue_many([JobSpec(command=f"convert img/{i:04d}.png -resize 50% thumbs/{i:04d}.png"
                            + (" # improper" if i % 37 == 36 else ""), max_retries=1,
                            queue="images")
                    for i in range(90)])
    _drain(q, clock, rng, keep_running="\x00")
    enqueue_demo(q)  # the same jobs `queuectl demo` adds
    _drain(q, clock, rng, keep_running="step $i/5")
    q.enqueue_many([JobSpec(command="./deploy.sh staging", priority=5, queue="deploy"),
                    JobSpec(command="pg_dump app | gzip > /backups/app.sql.gz", delay=3600,
                            queue="backups"),
                    JobSpec(command="python manage.py send_digest", queue="mail")])
    q.queue_set("images", max_running=2)
    q.queue_set("backups", paused=True)
    add_schedules(q, clock)
    clock.advance(3)
    registry.beat(WORKERS[0], state="idle", now=clock.now())
    running = q.jobs(state="processing", limit=1)
    for job in running:
        registry.beat(WORKERS[1], state="busy", now=clock.now(), job_id=job.id,
                      job_started_at=job.started_at)
    q.opened.close()


def add_schedules(q: Queue, clock: FakeClock) -> None:
    """Recurring jobs: one that just ran, one that died last night, one paused."""
    schedules.add(q, "health", "*/5 * * * *", "curl -fsS https://example.com/health",
                  priority=10, max_retries=0)
    schedules.add(q, "nightly-backup", "30 2 * * *", "pg_dump app | gzip > /backups/app.gz",
                  tz="Europe/Berlin", max_retries=0, priority=10)
    schedules.add(q, "weekly-report", "0 9 * * MON", "./report.sh --mail",
                  tz="America/New_York", queue_name="mail")
    schedules.add(q, "sync-media", "@hourly", "rsync -a /srv/media/ backup:/media/",
                  catch_up=True)
    schedules.set_paused(q, "sync-media", True)
    for name, error in (("nightly-backup", "exit code 1: pg_dump: connection refused"),
                        ("health", None)):
        job = schedules.run_now(q, name)
        claimed = q.claim(WORKERS[0], 30)
        assert claimed is not None and claimed.id == job["id"]
        clock.advance(0.4)
        q.finish(claimed, WORKERS[0], exit_code=exit_code_of(error), error=error,
                 stdout_tail="" if error else "ok\n", stderr_tail=error or "")


async def shoot(db: str, clock: FakeClock, keys: tuple[str, ...], out: Path) -> None:
    app = ConsoleApp(db, clock=clock, ids=Ids(random.Random(1)), refresh_interval=None,
                     threaded=False, steady=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press_and_settle(pilot, *keys)
        out.write_text(app.export_screenshot(title="queuectl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(START)
        here = os.getcwd()
        os.chdir(tmp)  # a short relative path in the pictures, not a temp folder name
        try:
            build_demo(Path("demo.db"), clock)
            for name, keys in VIEWS.items():
                path = args.out / f"{name}.svg"
                asyncio.run(shoot("demo.db", clock, keys, path))
                print(f"wrote {path}")
        finally:
            os.chdir(here)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
