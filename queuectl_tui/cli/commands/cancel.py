"""`queuectl cancel ID…`: stop jobs, waiting ones at once, running ones by signal."""

from __future__ import annotations

import argparse
import time

from queuectl_tui.cli.args import duration
from queuectl_tui.engine import DEFAULT_GRACE_S
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder


def add_parser(build: Builder) -> None:
    p = build.add("cancel", "stop jobs: waiting ones at once, running ones with SIGTERM then "
                            "SIGKILL", build.as_json)
    p.add_argument("job_ids", nargs="+", metavar="ID")
    p.add_argument("--grace", type=duration, default=DEFAULT_GRACE_S, metavar="DURATION",
                   help=f"for running jobs: time between SIGTERM and SIGKILL (default "
                        f"{DEFAULT_GRACE_S:g}s)")
    p.add_argument("--wait", action="store_true",
                   help="return once running jobs have really stopped")


def run(args: argparse.Namespace) -> int:
    queue = open_queue(args)
    results = queue.cancel(args.job_ids, grace=args.grace)
    stopping = [job_id for job_id, what in results if what == "stopping"]
    if args.wait and stopping:
        deadline = time.monotonic() + args.grace + 30  # a beat, the grace, the recording
        while time.monotonic() < deadline and len(queue.finished(stopping)) < len(stopping):
            time.sleep(0.2)
        finished = queue.finished(stopping)
        results = [(job_id, finished[job_id].state if job_id in finished else what)
                   for job_id, what in results]
    reply(args, {"results": [{"id": job_id, "result": what} for job_id, what in results]},
          lambda: print_results(results, args.grace))
    return 0


def print_results(results: list[tuple[str, str]], grace: float) -> None:
    for job_id, what in results:
        if what == "stopping":
            print(f"stopping {job_id}: SIGTERM within a second, SIGKILL after "
                  f"{grace:g} s; it will end cancelled")
        else:
            print(f"{job_id} {what}")
