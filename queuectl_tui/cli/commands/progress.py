"""`queuectl progress N|DONE/TOTAL [--message TEXT]`: a running job says how far
it is, from its own shell (its worker put its id, claim and database in its
environment).

Progress is advisory: when the database stays locked past about half a second
(a bulk enqueue's slice), the report lapses with a warning on stderr and exit
0, so a `set -e` script never dies of a busy database. It prints nothing else:
a job's stdout is its log.
"""

from __future__ import annotations

import argparse

from queuectl_tui.cli.in_job import add_job_option, target
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply, say
from queuectl_tui.cli.parser import Builder


def add_parser(build: Builder) -> None:
    p = build.add("progress", "from inside a running job: how far it is (a percentage such "
                              "as 40, or DONE/TOTAL such as 120/500) and a short message",
                  build.as_json)
    p.add_argument("value", metavar="PERCENT|DONE/TOTAL")
    p.add_argument("--message", "-m", metavar="TEXT",
                   help="a short status line (at most 200 characters; '' clears it)")
    add_job_option(p)


def run(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_progress_message, parse_progress
    value = parse_progress(args.value)
    message = None if args.message is None else check_progress_message(args.message)
    job = target(args)
    job_id, token = job.job_id, job.token
    queue = open_queue(args, create=False)
    if not queue.report_progress(job_id, token, value, message, args.message is not None):
        say(f"queuectl: warning: the database stayed locked; progress {args.value.strip()} "
            f"of job {job_id} was not recorded (progress is advisory)")
        reply(args, {"id": job_id, "recorded": False}, lambda: None)
        return 0
    reply(args, {"id": job_id, "recorded": True}, lambda: None)
    return 0
