"""`queuectl delete ID…`: remove jobs that are not running."""

from __future__ import annotations

import argparse

from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder


def add_parser(build: Builder) -> None:
    p = build.add("delete", "remove jobs that are not running", build.as_json)
    p.add_argument("job_ids", nargs="+", metavar="ID")


def run(args: argparse.Namespace) -> int:
    ids = open_queue(args).delete(args.job_ids)
    reply(args, {"deleted": ids}, f"deleted {len(ids)} job(s)")
    return 0
