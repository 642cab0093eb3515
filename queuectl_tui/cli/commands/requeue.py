"""`queuectl requeue`: run finished jobs again as the same jobs."""

from __future__ import annotations

import argparse

from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import UsageError


def add_parser(build: Builder) -> None:
    p = build.add("requeue", "run finished jobs (completed, dead, cancelled) again as the "
                             "same jobs; the retry budget starts afresh", build.as_json)
    p.add_argument("job_ids", nargs="*", metavar="ID")
    p.add_argument("--all-state", metavar="STATE", help="every job in this finished state")


def run(args: argparse.Namespace) -> int:
    if (args.all_state is None) == (not args.job_ids):
        raise UsageError("give job ids or --all-state STATE (not both)")
    queue = open_queue(args)
    ids = queue.requeue_all(args.all_state) if args.all_state else queue.requeue(args.job_ids)
    reply(args, {"requeued": ids}, f"requeued {len(ids)} job(s): pending again (blocked while "
                                   "a job they wait for has not completed), retry budget afresh")
    return 0
