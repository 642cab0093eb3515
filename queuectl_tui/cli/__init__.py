"""The headless `queuectl` commands: parse, call the engine, print text or JSON.

`main` is the `queuectl` script (and `python -m queuectl_tui`). The commands
live one a module in `cli/commands/`; `cli/opening.py` opens the queue and maps
errors to exit codes, `cli/output.py` prints. No SQL here and no Textual:
`queuectl` with no arguments imports the console lazily, so scripted commands
start in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from queuectl_tui.cli.commands import build_parser, command_in, handler_for
from queuectl_tui.cli.opening import run, skip_unneeded_driver
from queuectl_tui.cli.output import has_terminal, say
from queuectl_tui.errors import EXIT_OK, QueuectlError


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "_ARGCOMPLETE" in os.environ:  # a shell asking for completions: answer and exit
        from queuectl_tui.cli.commands.completion import complete  # only on TAB
        complete(build_parser())  # completion walks every command
    parser = build_parser(command_in(argv))
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}" + _dash_dash_hint(args))
    if args.command not in (None, "tui"):
        # Before any command imports the engine: a command on a SQLite file never
        # needs the PostgreSQL driver, which Peewee imports (with ssl) if it can:
        # 15-30 ms that `list`, `show`, `config`... paid before this.
        skip_unneeded_driver(args)
    handler = handler_for(args.command or "tui")
    if args.command is None and not has_terminal():
        handler = no_terminal
    return run(handler, args)


def no_terminal(args: argparse.Namespace) -> int:
    """`queuectl` alone without a terminal (cron, `ssh host queuectl` without
    -t, a pipe): a full-screen console would hang there, so print `status`
    (or, with no database yet, the help) and exit 0."""
    say("queuectl: no terminal for the console; here is `queuectl status` "
        "(`ssh -t` gives the console a terminal)")
    try:
        return handler_for("status")(argparse.Namespace(**vars(args), queue=None, json=False))
    except QueuectlError as exc:
        say(f"queuectl: {exc}")
        build_parser().print_help()
        return EXIT_OK


def _dash_dash_hint(args: argparse.Namespace) -> str:
    """For `enqueue ls -la` and `schedule add … ./backup.sh --full`: the
    command's own options went to queuectl; `--` keeps them the command's."""
    if args.command == "enqueue":
        return " (a command's own options go after `--`: queuectl enqueue [options] -- ls -la)"
    if args.command == "schedule" and getattr(args, "action", None) == "add":
        return (" (a command's own options go after `--`: queuectl schedule add NAME --cron "
                "EXPR [options] -- ./backup.sh --full)")
    return ""
