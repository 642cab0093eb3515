"""The headless commands for recurring schedules: `schedule add|list|pause|resume|remove|run`.

The same rules as cli.py: no SQL and no Textual here, JSON only on stdout with
--json, one-line errors with exit codes (2 usage, 3 unknown schedule, 4 a name
already taken).
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import Any, Callable

from queuectl_tui.cli_output import emit_json, say, table
from queuectl_tui.errors import UsageError


def add_parsers(add: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser,
                as_json: argparse.ArgumentParser, duration: Callable[[str], float],
                whole_number: Callable[[str], int], parser_class: type) -> None:
    p = add("schedule", "recurring jobs from cron expressions: add, list, pause, resume, "
                        "remove, run now")
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True,
                            parser_class=parser_class)
    ssub._parser_class = _command_words_parser(parser_class)  # `add NAME … -- ARGS…`
    s = ssub.add_parser("add", help="a new schedule: `schedule add NAME --cron EXPR "
                        "[options] COMMAND` or `… -- ARGS…`", parents=[common, as_json])
    ssub._parser_class = parser_class
    s.add_argument("name", metavar="NAME")
    s.add_argument("--cron", required=True, metavar="EXPR",
                   help="minute hour day-of-month month day-of-week, e.g. '30 2 * * *' "
                        "(6 fields: seconds first; or @hourly, @daily, @weekly, @monthly)")
    s.add_argument("--tz", default="UTC", metavar="ZONE",
                   help="the time zone the expression is read in (default UTC), e.g. "
                        "Europe/Berlin")
    s.add_argument("--catch-up", action="store_true",
                   help="after downtime, enqueue every missed tick (default: only the latest)")
    s.add_argument("--queue", metavar="NAME", help="the named queue of its jobs")
    s.add_argument("--max-retries", type=whole_number, metavar="N")
    s.add_argument("--timeout", type=duration, metavar="DURATION", help="0 = no timeout")
    s.add_argument("--priority", type=whole_number, metavar="N")
    s.add_argument("--cwd", metavar="DIR",
                   help="its jobs run in this directory (default: the one you add it from)")
    s.add_argument("--env", action="append", metavar="KEY=VALUE", default=[],
                   help="an extra environment variable for its jobs (repeatable)")
    ssub.add_parser("list", help="every schedule with its next run, last run and last job",
                    parents=[common, as_json])
    for action, text in (("pause", "no ticks fire until resumed"),
                         ("resume", "fire again from the next tick (missed ones are skipped)"),
                         ("remove", "delete the schedule (the jobs it made stay)"),
                         ("run", "enqueue one job of the schedule now, outside its ticks")):
        s = ssub.add_parser(action, help=text, parents=[common, as_json])
        s.add_argument("name", metavar="NAME")


def _command_words_parser(base: type) -> type:
    """`schedule add NAME --cron X -- ls -l`: argparse (before 3.12) fills an
    optional positional at NAME and then refuses later words; collect them here."""

    class CommandWordsParser(base):  # type: ignore[misc, valid-type]
        def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001
            namespace, extras = super().parse_known_args(args, namespace)
            words: list[str] = []
            rest: list[str] = []
            for i, word in enumerate(extras):
                if word == "--":
                    words.extend(extras[i + 1:])
                    break
                (rest if word.startswith("-") and word != "-" else words).append(word)
            namespace.words = words
            return namespace, rest

    return CommandWordsParser


def cmd_schedule(args: argparse.Namespace, open_queue: Callable[..., Any]) -> int:
    from queuectl_tui.engine import schedules
    if args.action == "list":
        open_queue(args, create=False)  # a missing database is exit 5 with the hint
        found = schedules.list_all()
        if args.json:
            emit_json(found)
        else:
            print_schedules(found)
        return 0
    schedules.check_name(args.name)
    if args.action == "add":
        return schedule_add(args, open_queue)
    queue = open_queue(args, create=False)
    if args.action in ("pause", "resume"):
        row = schedules.set_paused(queue, args.name, args.action == "pause")
        if args.json:
            emit_json(row)
        elif row["paused"]:
            print(f"paused schedule {row['name']}: no ticks fire until `schedule resume`")
        else:
            print(f"resumed schedule {row['name']}: next run {_when(row['next_run_at'])}")
        return 0
    if args.action == "remove":
        row = schedules.remove(queue, args.name)
        if args.json:
            emit_json(row)
        else:
            print(f"removed schedule {row['name']} (the jobs it made stay)")
        return 0
    job = schedules.run_now(queue, args.name)
    if args.json:
        emit_json(job)
    else:
        print(f"enqueued {job['id']}")
    return 0


def schedule_add(args: argparse.Namespace, open_queue: Callable[..., Any]) -> int:
    from queuectl_tui.cli import env_option
    from queuectl_tui.engine import schedules
    words = args.words
    if not words:
        raise UsageError("give the command to run: `schedule add NAME --cron EXPR 'COMMAND'` "
                         "or `… -- ARGS…`")
    command = words[0] if len(words) == 1 else shlex.join(words)
    zone = schedules.check_zone(args.tz)
    schedules.check_cron(args.cron, zone)  # bad input fails before the database is opened
    cwd = os.path.abspath(args.cwd) if args.cwd is not None else os.getcwd()
    row = schedules.add(open_queue(args), args.name, args.cron, command, tz=args.tz,
                        catch_up=args.catch_up, queue_name=args.queue,
                        max_retries=args.max_retries, timeout=args.timeout,
                        priority=args.priority or 0, cwd=cwd,
                        env=env_option(args.env) or None)
    if args.json:
        emit_json(row)
    else:
        print(f"added schedule {row['name']} ({row['cron']}, {row['tz']}): next run "
              f"{_when(row['next_run_at'])}")
    return 0


def _when(stamp: str | None) -> str:
    return "never" if stamp is None else stamp[:19].replace("T", " ") + " UTC"


def print_schedules(found: list[dict[str, Any]]) -> None:
    if not found:
        say("no schedules; add one with: queuectl schedule add NAME --cron '0 3 * * *' "
            "'COMMAND'")
        return
    table([(s["name"], s["cron"], s["tz"],
            "paused" if s["paused"] else _short(s["next_run_at"]) or "never",
            _short(s["last_run_at"]) or "-", s["last_job_id"] or "-",
            s["last_job_state"] or ("-" if s["last_job_id"] is None else "gone"),
            s["command"]) for s in found],
          ["SCHEDULE", "CRON", "TZ", "NEXT (UTC)", "LAST (UTC)", "LAST JOB", "STATE", "COMMAND"],
          [24, 20, 20, 19, 19, 40, 10])


def _short(stamp: str | None) -> str | None:
    return None if stamp is None else stamp[:19].replace("T", " ")
