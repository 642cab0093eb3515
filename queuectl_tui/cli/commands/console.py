"""`queuectl tui` (and `queuectl` alone at a terminal): open the console.

Textual is imported only here, and only when the console opens.
"""

from __future__ import annotations

import argparse

from queuectl_tui.cli.output import has_terminal
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import QueuectlError, UsageError


def add_parser(build: Builder) -> None:
    build.add("tui", "open the console (the same as no arguments)")


def run(args: argparse.Namespace) -> int:
    if not has_terminal():
        raise UsageError("the console needs a terminal (stdin and stdout); for a report "
                         "without one: queuectl status")
    try:
        from queuectl_tui.console.app import run_console
    except ImportError as exc:
        raise QueuectlError(f"the console is not available: {exc}") from None
    return run_console(getattr(args, "db", None))
