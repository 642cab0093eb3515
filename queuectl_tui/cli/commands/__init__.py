"""The commands of `queuectl`, one module each: the module adds its parser
(`add_parser(build)`) and runs it (`run(args)`).

`COMMANDS` names them in the order `queuectl --help` lists them. A command
line whose command is certain before parsing (`command_in`) imports and builds
only that command's module and parser: argparse does real work for every parser
and argument it is given (a help formatter, translation look-ups that stat the
disk), about 10 ms for all of them, which `queuectl status` would pay each time.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType
from typing import Callable, Sequence

from queuectl_tui import __version__
from queuectl_tui.cli.parser import Builder, Parser

# command -> its module in this package (the order of `queuectl --help`)
COMMANDS: dict[str, str] = {
    "enqueue": "enqueue", "worker": "worker", "status": "status", "list": "list",
    "show": "show", "logs": "logs", "wait": "wait", "history": "history", "audit": "audit",
    "dlq": "dlq", "config": "config", "cancel": "cancel", "hold": "hold", "release": "release",
    "edit": "edit", "pause": "pause", "resume": "resume", "requeue": "requeue",
    "delete": "delete", "snooze": "snooze", "extend": "extend",
    "demo": "demo", "service": "service", "queue": "queue", "prune": "prune",
    "schedule": "schedule", "completion": "completion", "metrics": "metrics",
    "progress": "progress", "result": "result", "tui": "console", "web": "web",
}

Handler = Callable[[argparse.Namespace], int]


def command_module(name: str) -> ModuleType:
    """The module of command `name` (imported on first use)."""
    return importlib.import_module(f"{__name__}.{COMMANDS[name]}")


def handler_for(name: str) -> Handler:
    return command_module(name).run


def command_in(argv: Sequence[str]) -> str | None:
    """The command `argv` runs, when that is certain before parsing: it is the
    first word, after nothing but `--db PATH` (or `--db=PATH`, or `--db`
    abbreviated as argparse allows). Anything else before it (`-h`, `--version`,
    `--`) or an unknown word: None, and the whole parser is built as before."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-") or word == "-":
            return word if word in COMMANDS else None
        name, eq, _ = word.partition("=")
        if len(name) < 3 or not "--db".startswith(name):
            return None
        i += 1 if eq else 2
    return None


def build_parser(only: str | None = None) -> Parser:
    """The whole command line, or with `only` the parser of that one command
    (see command_in): its parsing, errors and help are the same either way."""
    common = Parser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, metavar="PATH|URL",
                        help="database file or postgresql:// URL (default: $QUEUECTL_DB, "
                             "then ~/.local/share/queuectl/queuectl.db)")
    as_json = Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON only on stdout")

    parser = Parser(prog="queuectl", parents=[common],
                    description="A persistent queue of shell-command jobs. "
                                "Run without arguments to open the console.")
    parser.add_argument("--version", action="version", version=f"queuectl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    build = Builder(sub, common, as_json)
    for name in COMMANDS if only is None else (only,):
        command_module(name).add_parser(build)
    return parser
