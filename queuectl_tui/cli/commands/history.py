"""`queuectl history`: state changes, newest first (JSON Lines with --json)."""

from __future__ import annotations

import argparse

from queuectl_tui.cli.args import positive_int
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import emit_json_lines, reply, table
from queuectl_tui.cli.parser import Builder


def add_parser(build: Builder) -> None:
    p = build.add("history", "state changes, newest first (JSON Lines with --json)",
                  build.as_json)
    p.add_argument("--job", metavar="ID")
    p.add_argument("--limit", type=positive_int, metavar="N")


def run(args: argparse.Namespace) -> int:
    queue = open_queue(args, create=False)
    if args.job is not None:
        queue.get(args.job)  # an unknown id is an error, not an empty history
    events = queue.history(args.job, args.limit)
    reply(args, events, lambda: table(
        ((e["at"][:23].replace("T", " "), e["job_id"], e["from"] or "-", e["to"],
          e["attempt"], "-" if e["exit_code"] is None else e["exit_code"],
          e["worker_id"] or e["by"] or "-", e["note"] or "") for e in events),
        ["AT", "JOB", "FROM", "TO", "TRY", "EXIT", "BY", "NOTE"]), emit=emit_json_lines)
    return 0
