"""Shell completion for bash, zsh and fish, through argcomplete.

`queuectl completion SHELL` prints the script a shell loads. On TAB the shell
runs `queuectl` itself with `_ARGCOMPLETE` set; `cli.main` then hands the
parser to `complete` below, which answers and exits before any command runs.
Only that path imports argcomplete, so every other command starts as fast as
before (DECISIONS.md, "Shell completion: argcomplete, imported only on TAB").

Every command and flag completes from the parser itself, so commands added
later complete with no change here; values complete by what they name: job ids
(only those a command accepts: `cancel` offers unfinished jobs, `dlq retry`
dead ones), config keys, states, queue names and schedule names.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Iterable

from queuectl_tui.cli.parser import Builder
from queuectl_tui.engine import FINAL, STATES, resolve_target, skip_postgres_driver
from queuectl_tui.errors import QueuectlError

SHELLS = ("bash", "zsh", "fish")
BASH_SPECIAL_PREFIXES = "@$"  # word breaks that bash keeps in the word it replaces
PROG = "queuectl"

# Which jobs a command's ID arguments accept, by command path; others: any job.
JOB_STATES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("cancel",): ("pending", "failed", "processing", "blocked", "held"),
    ("hold",): ("pending", "failed", "blocked"),
    ("release",): ("held",),
    ("edit",): ("pending", "failed", "blocked", "held"),
    ("pause",): ("processing",),
    ("resume",): ("processing",),
    ("snooze",): ("processing",),
    ("extend",): ("processing",),
    ("requeue",): ("completed", "dead", "cancelled"),
    ("dlq", "retry"): ("dead",),
    ("delete",): ("pending", "failed", "completed", "dead", "cancelled", "blocked", "held"),
}
FILE_DESTS = {"db", "file", "log", "spec"}  # paths (or commands): the shell's own completion


def add_parser(build: Builder) -> None:
    p = build.add("completion", f"print the tab-completion script for {', '.join(SHELLS)} "
                          "(see README: Shell completion)")
    p.add_argument("shell", choices=SHELLS, metavar="SHELL",
                   help=f"one of {', '.join(SHELLS)}")


def run(args: argparse.Namespace) -> int:
    """Print the script for `args.shell` on stdout."""
    argcomplete = _argcomplete()
    sys.stdout.write(argcomplete.shellcode([PROG], shell=args.shell))
    return 0


def complete(parser: argparse.ArgumentParser) -> None:
    """Answer a shell's completion request and exit (argcomplete's protocol:
    the words come in COMP_LINE/COMP_POINT, the answers go out on fd 8)."""
    try:
        argcomplete = _argcomplete()
    except QueuectlError:
        os._exit(1)  # the shell then falls back to its own completion
    attach(parser)
    finder = _finder_class(argcomplete)()
    finder(parser, always_complete_options=False,
           default_completer=argcomplete.completers.FilesCompleter())


def _finder_class(argcomplete: Any) -> type:
    """argcomplete's finder, keeping the `@` of a word for bash.

    Bash replaces the part of a word after its last COMP_WORDBREAKS character,
    except that `@` (and `$`) are readline "special prefixes": the part replaced
    starts at the `@` itself. argcomplete cuts answers after the `@`, so
    `tick@2026…` came back as `tick2026…` (a schedule's job ids hold an `@`)."""

    class Finder(argcomplete.CompletionFinder):  # type: ignore[misc, name-defined]
        def quote_completions(self, completions: list[str], cword_prequote: str,
                              last_wordbreak_pos: int | None) -> list[str]:
            if (last_wordbreak_pos is not None and cword_prequote == ""
                    and os.environ.get("_ARGCOMPLETE_SHELL") == "bash"
                    and completions and len(completions[0]) > last_wordbreak_pos
                    and completions[0][last_wordbreak_pos] in BASH_SPECIAL_PREFIXES):
                last_wordbreak_pos -= 1
            return super().quote_completions(completions, cword_prequote, last_wordbreak_pos)

    return Finder


def _argcomplete() -> Any:
    try:
        import argcomplete
    except ImportError:
        raise QueuectlError("shell completion needs argcomplete: pip install argcomplete") \
            from None
    return argcomplete


def attach(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Give every argument that takes a value the completer its value calls for,
    walking every sub-command (`path` is the command words so far)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                attach(sub, path + (name,))
        elif action.nargs != 0 and action.choices is None:  # argcomplete offers choices itself
            action.completer = completer_for(path, action)  # type: ignore[attr-defined]


def completer_for(path: tuple[str, ...], action: argparse.Action) -> Callable[..., Any] | None:
    """None: the shell's file completion (paths); otherwise a completer."""
    dest = action.dest
    group = path[0] if path else ""
    if dest in ("job_id", "job_ids", "job"):
        return JobIds(JOB_STATES.get(path))
    if group == "config" and dest == "key":
        return Words(config_keys)
    if dest == "state":
        return Words(_states, comma_list=True)
    if dest == "all_state":
        return Words(lambda: FINAL)
    if dest == "queues" or dest == "queue" or (group == "queue" and dest in ("name", "names")):
        return Words(queue_names, comma_list=dest == "queues", needs_db=True)
    if dest in ("schedule", "schedules", "schedule_name") or (
            group == "schedule" and dest in ("name", "names")):
        return Words(schedule_names, needs_db=True)
    if dest == "cwd":
        import argcomplete
        return argcomplete.completers.DirectoriesCompleter()
    if dest in FILE_DESTS:
        return None
    return Words(lambda: ())  # a number, a duration, a name of your own: nothing to offer


class Words:
    """Complete from a list of words; with `comma_list`, the last of
    `a,b,c` (the earlier ones are kept). `needs_db`: the list comes from the
    database of the command line (`--db`, else $QUEUECTL_DB, else the default)."""

    def __init__(self, source: Callable[..., Iterable[str]], *, comma_list: bool = False,
                 needs_db: bool = False) -> None:
        self.source = source
        self.comma_list = comma_list
        self.needs_db = needs_db

    def __call__(self, prefix: str, parsed_args: argparse.Namespace | None = None,
                 **_: Any) -> list[str]:
        head, _, last = prefix.rpartition(",") if self.comma_list else ("", "", prefix)
        head = head + "," if head else ""
        try:
            if self.needs_db:
                words = _with_db(parsed_args, self.source)
            else:
                words = list(self.source())
        except Exception:  # noqa: BLE001 - a TAB must never print a traceback
            return []
        return [head + word for word in words if word.startswith(last)]


class JobIds:
    """Job ids from the command line's database, by prefix, in the states the
    command accepts (None: any)."""

    def __init__(self, states: tuple[str, ...] | None) -> None:
        self.states = states

    def __call__(self, prefix: str, parsed_args: argparse.Namespace | None = None,
                 **_: Any) -> list[str]:
        from queuectl_tui.engine import known_job_ids
        try:
            return _with_db(parsed_args, lambda db: known_job_ids(db, prefix, self.states))
        except Exception:  # noqa: BLE001 - no database yet, locked, ...: offer nothing
            return []


def _with_db(parsed_args: argparse.Namespace | None, read: Callable[[Any], Iterable[str]]
             ) -> list[str]:
    """Open the database read-only (never create it), read, close."""
    db_arg = getattr(parsed_args, "db", None)
    skip_postgres_driver(resolve_target(db_arg))
    from queuectl_tui.engine import open_database  # after the driver is skipped
    opened = open_database(db_arg, create=False)
    try:
        return list(read(opened.db))
    finally:
        opened.close()


def config_keys() -> list[str]:
    from queuectl_tui.engine import known_config_keys
    return known_config_keys()


def _states() -> tuple[str, ...]:
    return tuple(STATES)


def queue_names(db: Any) -> list[str]:
    """The named queues (`--queue`, `--queues`, the `queue` commands' NAME)."""
    from queuectl_tui.engine import queue_rules
    return sorted(queue_rules(db).names)


def schedule_names(db: Any) -> list[str]:
    """Recurring jobs' names (the `schedule` commands' NAME arguments)."""
    from queuectl_tui.engine import known_schedule_names
    return known_schedule_names()
