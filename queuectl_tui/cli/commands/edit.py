"""`queuectl edit ID --priority 5 …`: change a job that has not started."""

from __future__ import annotations

import argparse
import os

from queuectl_tui.cli.args import duration, env_option, whole_number
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import UsageError


def add_parser(build: Builder) -> None:
    p = build.add("edit", "change a job that has not started (pending, retrying, blocked, "
                          "held); a job that started meanwhile exits 4 and nothing changes",
                  build.as_json)
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--command", dest="new_command", metavar="COMMAND",
                   help="the shell command it runs")
    p.add_argument("--priority", type=whole_number, metavar="N", help="higher runs first")
    p.add_argument("--run-at", metavar="TIME", help="ISO 8601 time, e.g. 2026-01-31T09:00:00Z")
    p.add_argument("--delay", type=duration, metavar="DURATION",
                   help="due this long from now, e.g. 30, 10s, 5m, 2h (0: now)")
    p.add_argument("--timeout", type=duration, metavar="DURATION", help="0 = no timeout")
    p.add_argument("--max-retries", type=whole_number, metavar="N",
                   help="retries after the first run")
    p.add_argument("--queue", metavar="NAME", help="move it to this named queue")
    p.add_argument("--env", action="append", metavar="KEY=VALUE", default=[],
                   help="set (or replace) one environment variable (repeatable)")
    p.add_argument("--unset-env", action="append", metavar="KEY", default=[],
                   help="remove one environment variable (repeatable)")
    p.add_argument("--cwd", metavar="DIR", help="run in this directory")


def run(args: argparse.Namespace) -> int:
    changes = {"command": args.new_command, "priority": args.priority, "run_at": args.run_at,
               "delay": args.delay, "timeout": args.timeout, "max_retries": args.max_retries,
               "queue": args.queue, "env": env_option(args.env) or None,
               "unset_env": args.unset_env or None,
               "cwd": None if args.cwd is None else os.path.abspath(args.cwd)}
    changes = {name: value for name, value in changes.items() if value is not None}
    if not changes:
        raise UsageError("nothing to change: give at least one of --command, --priority, "
                         "--run-at, --delay, --timeout, --max-retries, --queue, --env, "
                         "--unset-env, --cwd")
    from queuectl_tui.engine import check_edits  # loads the engine: after parsing
    check_edits(changes)  # bad input is refused before the database is opened
    job = open_queue(args).edit(args.job_id, changes)
    reply(args, job, f"edited {job['id']} ({job['state']})")
    return 0
