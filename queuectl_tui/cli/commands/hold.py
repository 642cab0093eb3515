"""`queuectl hold ID…`: put waiting jobs aside; none starts until released."""

from __future__ import annotations

import argparse

from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder


def add_parser(build: Builder) -> None:
    p = build.add("hold", "put pending, retrying or blocked jobs aside: none starts until "
                          "`release`; all or nothing", build.as_json)
    p.add_argument("job_ids", nargs="+", metavar="ID")


def run(args: argparse.Namespace) -> int:
    results = open_queue(args).hold(args.job_ids)
    reply(args, {"results": [{"id": job_id, "result": what} for job_id, what in results]},
          "\n".join(f"{job_id} {what}" for job_id, what in results))
    return 0
