"""`queuectl demo`: enqueue a mix of passing, slow and failing jobs and start workers."""

from __future__ import annotations

import argparse

from queuectl_tui.cli.args import worker_count
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.parser import Builder
from queuectl_tui.engine import redact


def add_parser(build: Builder) -> None:
    p = build.add("demo", "enqueue a mix of passing, slow and failing jobs and start workers")
    p.add_argument("--workers", type=worker_count, default=2, metavar="N")
    p.add_argument("--no-workers", action="store_true", help="only enqueue")


def run(args: argparse.Namespace) -> int:
    from queuectl_tui.demo import enqueue_demo  # the engine: after the driver is skipped
    queue = open_queue(args)
    ids = enqueue_demo(queue)
    print(f"enqueued {len(ids)} demo jobs into {redact(queue.opened.target)}")
    if args.no_workers:
        print("start workers with: queuectl worker start --count 2")
        return 0
    print("watch them from another terminal with: queuectl   (or: queuectl status)")
    from queuectl_tui.workers.supervisor import Supervisor
    return Supervisor(queue, queue.opened.target, args.workers).run()
