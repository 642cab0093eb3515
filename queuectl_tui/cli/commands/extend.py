"""`queuectl extend DURATION`: from inside a job, push its own timeout further."""

from __future__ import annotations

import argparse

from queuectl_tui.cli import in_job
from queuectl_tui.cli.args import duration
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder


def add_parser(build: Builder) -> None:
    p = build.add("extend", "from inside a job: push its own timeout DURATION further (at "
                            "most to its queue's max-timeout, when it has one)", build.as_json)
    p.add_argument("more", type=duration, metavar="DURATION")
    in_job.add_job_option(p)


def run(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import format_duration
    where = in_job.target(args)
    done = open_queue(args, create=False).extend(where.job_id, where.token, args.more)
    reply(args, done, f"job {done['id']}'s timeout is now "
                      f"{format_duration(done['effective_timeout'])} "
                      f"({format_duration(done['timeout'])}, extended by "
                      f"{format_duration(done['extended_by'])})")
    return 0
