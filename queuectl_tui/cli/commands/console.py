"""`queuectl tui` (and `queuectl` alone at a terminal): open the console.

Textual is imported only here, and only when the console opens.
"""

from __future__ import annotations

import argparse
import os

from queuectl_tui.cli.output import has_terminal
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import QueuectlError, UsageError


def add_parser(build: Builder) -> None:
    command = build.add("tui", "open the console (the same as no arguments)")
    command.add_argument("--read-only", action="store_true",
                         help="a console in which no key changes anything (also "
                              "QUEUECTL_READ_ONLY=1)")


def run(args: argparse.Namespace) -> int:
    # TEXTUAL_DRIVER names a driver that is not a terminal's: `queuectl web`
    # runs each page's console over a pipe with Textual's web driver.
    if not has_terminal() and not os.environ.get("TEXTUAL_DRIVER"):
        raise UsageError("the console needs a terminal (stdin and stdout); for a report "
                         "without one: queuectl status")
    try:
        from queuectl_tui.console.app import run_console
    except ImportError as exc:
        raise QueuectlError(f"the console is not available: {exc}") from None
    return run_console(getattr(args, "db", None), read_only=getattr(args, "read_only", False))
