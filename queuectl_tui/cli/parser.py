"""The argparse pieces every command builds its parser with.

`Parser` makes a usage error one line on stderr with exit 2; `Builder` is what
`cli/commands/` hands each command module so it adds its own sub-command with
the shared `--db` and `--json` options. Which commands exist, and building only
the one being run, is `cli/commands/__init__.py`'s business.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from queuectl_tui.errors import EXIT_USAGE


def terminal_columns() -> int:
    """`shutil.get_terminal_size().columns`, without importing shutil: argparse
    makes a help formatter for every argument it is given (to check the metavar),
    and the first one's `import shutil` (with zlib, bz2 and lzma) cost every
    command about 3 ms of start-up, for help that is seldom printed."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
        return 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's own, as wide as the terminal (less 2, as argparse does)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width)


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line on stderr and exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


class Builder:
    """What a command module adds its sub-command with: `add` for the command
    (with `--db`, and `--json` when `as_json` is passed among its parents),
    `actions` for a command of several actions (`worker start|stop|list`)."""

    parser_class = Parser

    def __init__(self, sub: argparse._SubParsersAction, common: Parser, as_json: Parser) -> None:
        self.sub = sub
        self.common = common  # --db, on every command and action
        self.as_json = as_json  # --json

    def add(self, name: str, help_text: str, *parents: argparse.ArgumentParser) -> Parser:
        """The command `name`, its help also its description."""
        return self.sub.add_parser(name, help=help_text, description=help_text,
                                   parents=[self.common, *parents])

    def actions(self, command: argparse.ArgumentParser) -> argparse._SubParsersAction:
        """The required ACTION word of a command group."""
        return command.add_subparsers(dest="action", metavar="ACTION", required=True,
                                      parser_class=self.parser_class)

    def action(self, actions: argparse._SubParsersAction, name: str, help_text: str,
               **kwargs: Any) -> Parser:
        """One action of a group, with `--db` and `--json`."""
        return actions.add_parser(name, help=help_text,
                                  parents=[self.common, self.as_json], **kwargs)
