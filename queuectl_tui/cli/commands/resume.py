"""`queuectl resume ID…`: continue paused jobs (SIGCONT), where they run."""

from __future__ import annotations

import argparse

from queuectl_tui.cli.commands.pause import act
from queuectl_tui.cli.parser import Builder


def add_parser(build: Builder) -> None:
    p = build.add("resume", "continue paused jobs where they run (SIGCONT)", build.as_json)
    p.add_argument("job_ids", nargs="+", metavar="ID")


def run(args: argparse.Namespace) -> int:
    return act(args, stop=False)
