"""What a command run from inside a job (`snooze`, `extend`, `progress`, `result`) acts on.

A worker gives every job its id (`QUEUECTL_JOB_ID`) and its run's claim token
(`QUEUECTL_CLAIM`) in its environment, beside the worker's own, which names
the database (`QUEUECTL_DB`). Inside the job the command acts on that run
only: a run that was rescued meanwhile (and runs again, perhaps elsewhere)
changes nothing, and the command exits 4. `--job ID` names a job from outside
it (an operator's shell); then whatever run holds the job is acted on.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from queuectl_tui.cli.parser import Parser
from queuectl_tui.engine import CLAIM_MARKER
from queuectl_tui.errors import UsageError

JOB_ID_VARIABLE = "QUEUECTL_JOB_ID"


@dataclass(frozen=True)
class Target:
    job_id: str
    token: str | None  # the run's claim token: set when run from inside that job
    inside: bool


def add_job_option(p: Parser) -> None:
    p.add_argument("--job", metavar="ID", help=f"the job to act on (default: ${JOB_ID_VARIABLE},"
                   " the job this runs in); from outside the job, whatever run holds it")


def target(args: argparse.Namespace) -> Target:
    own = os.environ.get(JOB_ID_VARIABLE) or None
    token = os.environ.get(CLAIM_MARKER) or None
    if args.job is None:
        if own is None or token is None:
            raise UsageError(f"not inside a job (no ${JOB_ID_VARIABLE} and ${CLAIM_MARKER} in "
                             "the environment): run it from a job's command, or name a "
                             "running job with --job ID")
        return Target(own, token, True)
    if args.job == own and token is not None:
        return Target(own, token, True)
    return Target(args.job, None, False)
