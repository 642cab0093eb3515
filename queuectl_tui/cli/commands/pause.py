"""`queuectl pause ID…` and `queuectl resume ID…`: stop a running job's whole
process group where it runs (SIGSTOP), and continue it (SIGCONT)."""

from __future__ import annotations

import argparse

from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder

SAID = {
    "pausing": "its worker stops its processes (SIGSTOP) within a second; its lease is kept "
               "and its timeout's clock stops",
    "paused": "paused already",
    "resuming": "its worker continues its processes (SIGCONT) within a second",
    "running": "not paused: nothing to resume",
}


def add_parser(build: Builder) -> None:
    p = build.add("pause", "stop running jobs' processes where they run (SIGSTOP): they keep "
                           "their worker and lease, their timeout's clock stops", build.as_json)
    p.add_argument("job_ids", nargs="+", metavar="ID")


def run(args: argparse.Namespace) -> int:
    return act(args, stop=True)


def act(args: argparse.Namespace, *, stop: bool) -> int:
    queue = open_queue(args)
    results = queue.pause(args.job_ids) if stop else queue.resume(args.job_ids)
    reply(args, {"results": [{"id": job_id, "result": what} for job_id, what in results]},
          "\n".join(f"{what} {job_id}: {SAID[what]}" if what in ("pausing", "resuming")
                    else f"{job_id}: {SAID[what]}" for job_id, what in results))
    return 0
