"""`queuectl prune`: delete finished jobs past their retention now."""

from __future__ import annotations

import argparse

from queuectl_tui.cli.args import duration
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder
from queuectl_tui.engine import FINAL
from queuectl_tui.errors import UsageError


def add_parser(build: Builder) -> None:
    p = build.add("prune", "delete finished jobs past their retention now (with their events, "
                           "attempts and logs)", build.as_json)
    p.add_argument("--queue", metavar="NAME", help="only this queue")
    p.add_argument("--state", metavar="STATE[,STATE…]",
                   help="only these finished states (completed, dead, cancelled)")
    p.add_argument("--older-than", type=duration, metavar="DURATION",
                   help="every finished job older than this, whatever the retention settings")
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")


def run(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_queue_name, check_state  # after parsing
    states = list(FINAL)
    if args.state is not None:
        states = [check_state(st.strip()) for st in args.state.split(",") if st.strip()]
        if not states or any(st not in FINAL for st in states):
            raise UsageError(f"--state takes finished states: {', '.join(FINAL)}")
    if args.queue is not None:
        check_queue_name(args.queue)
    queue = open_queue(args, create=False)
    pruned, _ = queue.prune(queue=args.queue, states=states, older_than=args.older_than,
                            dry_run=args.dry_run)
    verb = "would prune" if args.dry_run else "pruned"
    parts = ", ".join(f"{st} {pruned.counts.get(st, 0)}" for st in states)
    reply(args, {"dry_run": args.dry_run, "pruned": pruned.total,
                 "by_state": {st: pruned.counts.get(st, 0) for st in states}},
          f"{verb} {pruned.total} job(s): {parts}")
    return 0
