"""`queuectl schedule add|list|pause|resume|remove|run`: recurring jobs.

One-line errors with exit codes as every command: 2 usage, 3 unknown
schedule, 4 a name already taken.
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import Any

from queuectl_tui.cli.args import duration, env_option, whole_number
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply, say, table
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import UsageError


def add_parser(build: Builder) -> None:
    ssub = build.actions(build.add("schedule", "recurring jobs from cron expressions: add, "
                                               "list, pause, resume, remove, run now"))
    ssub._parser_class = _command_words_parser(build.parser_class)  # `add NAME … -- ARGS…`
    s = build.action(ssub, "add", "a new schedule: `schedule add NAME --cron EXPR "
                     "[options] COMMAND` or `… -- ARGS…`")
    ssub._parser_class = build.parser_class
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
    build.action(ssub, "list", "every schedule with its next run, last run and last job")
    for action, text in (("pause", "no ticks fire until resumed"),
                         ("resume", "fire again from the next tick (missed ones are skipped)"),
                         ("remove", "delete the schedule (the jobs it made stay)"),
                         ("run", "enqueue one job of the schedule now, outside its ticks")):
        s = build.action(ssub, action, text)
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


def run(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import (check_schedule_name, list_schedules,  # after parsing
                                     pause_schedule, remove_schedule, run_schedule_now)
    if args.action == "list":
        open_queue(args, create=False)  # a missing database is exit 5 with the hint
        found = list_schedules()
        reply(args, found, lambda: print_schedules(found))
        return 0
    check_schedule_name(args.name)
    if args.action == "add":
        return schedule_add(args)
    queue = open_queue(args, create=False)
    if args.action in ("pause", "resume"):
        row = pause_schedule(queue, args.name, args.action == "pause")
        reply(args, row, f"paused schedule {row['name']}: no ticks fire until `schedule resume`"
              if row["paused"] else
              f"resumed schedule {row['name']}: next run {_when(row['next_run_at'])}")
        return 0
    if args.action == "remove":
        row = remove_schedule(queue, args.name)
        reply(args, row, f"removed schedule {row['name']} (the jobs it made stay)")
        return 0
    job = run_schedule_now(queue, args.name)
    reply(args, job, f"enqueued {job['id']}")
    return 0


def schedule_add(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import add_schedule, check_cron, check_zone
    words = args.words
    if not words:
        raise UsageError("give the command to run: `schedule add NAME --cron EXPR 'COMMAND'` "
                         "or `… -- ARGS…`")
    command = words[0] if len(words) == 1 else shlex.join(words)
    zone = check_zone(args.tz)
    check_cron(args.cron, zone)  # bad input fails before the database is opened
    cwd = os.path.abspath(args.cwd) if args.cwd is not None else os.getcwd()
    row = add_schedule(open_queue(args), args.name, args.cron, command, tz=args.tz,
                       catch_up=args.catch_up, queue_name=args.queue,
                       max_retries=args.max_retries, timeout=args.timeout,
                       priority=args.priority or 0, cwd=cwd,
                       env=env_option(args.env) or None)
    reply(args, row, f"added schedule {row['name']} ({row['cron']}, {row['tz']}): next run "
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
