"""`queuectl snooze DURATION`: from inside a job, stop now and run again later,
the attempt not counted. Exit code 75 from a job does the same (`snooze-delay`)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from queuectl_tui.cli import in_job
from queuectl_tui.cli.args import duration
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder


def add_parser(build: Builder) -> None:
    p = build.add("snooze", "from inside a job: stop now and run again after DURATION, the "
                            "attempt not counted (at most max-snoozes times; a job's exit "
                            "code 75 does the same)", build.as_json)
    p.add_argument("delay", type=duration, metavar="DURATION")
    in_job.add_job_option(p)


def run(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import SNOOZE_EXIT, format_duration
    where = in_job.target(args)
    asked = open_queue(args, create=False).snooze(where.job_id, where.token, args.delay)
    shown = {key: asked[key] for key in ("id", "snooze_for", "number", "max_snoozes")}
    delay = format_duration(asked["snooze_for"])
    if asked["number"] > asked["max_snoozes"]:
        text = (f"job {asked['id']} snoozes past max-snoozes {asked['max_snoozes']}: this run "
                "ends as a failure")
    else:
        text = (f"job {asked['id']} snoozes: it stops now and runs again in {delay} "
                f"(snooze {asked['number']} of {asked['max_snoozes']}, attempt not counted)")
    reply(args, shown, text)
    if not where.inside:
        return 0
    sys.stdout.flush()
    end_own_run(asked)
    return SNOOZE_EXIT


def end_own_run(asked: dict[str, Any]) -> None:
    """SIGTERM to this process's group, which is the job's (the worker started
    it in a session of its own), this process excepted: the run ends now, not
    at its worker's next look (within a second), which stops it otherwise.
    Not when the group is another's (a job that made process groups of its
    own), nor on another host."""
    from queuectl_tui.engine import current_host
    group = os.getpgrp()
    if (asked["run_pid"] not in (None, group)
            or asked["run_host"] not in (None, current_host())):
        return
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(group, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
