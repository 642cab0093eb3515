"""`queuectl release ID…`: held jobs go on (pending, or blocked while a
dependency has not completed)."""

from __future__ import annotations

import argparse

from queuectl_tui.cli.opening import open_queue, say_if_no_worker
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder
from queuectl_tui.safe_text import printable


def add_parser(build: Builder) -> None:
    p = build.add("release", "let held jobs go on: pending, or blocked while a job they wait "
                             "for has not completed; all or nothing", build.as_json)
    p.add_argument("job_ids", nargs="+", metavar="ID")


def run(args: argparse.Namespace) -> int:
    queue = open_queue(args)
    results = queue.release_held(args.job_ids)
    reply(args, {"results": [{"id": job_id, "result": to, "why": why}
                             for job_id, to, why in results]},
          "\n".join(printable(f"{job_id} {to}" + (f": {why}" if why else ""))
                    for job_id, to, why in results))
    if any(to == "pending" for _, to, _ in results):
        say_if_no_worker(queue)
    return 0
