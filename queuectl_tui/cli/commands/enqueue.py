"""`queuectl enqueue`: add a job from a shell line, a JSON object, or a JSON Lines file."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from queuectl_tui.cli.args import duration, env_option, whole_number
from queuectl_tui.cli.opening import open_queue, say_if_no_worker
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import UsageError


def add_parser(build: Builder) -> None:
    p = build.add("enqueue", "add a job: a shell command, a JSON object, or a JSON Lines "
                             "file; `enqueue [options] -- ARGS…` runs ARGS as typed",
                  build.as_json)
    p.add_argument("spec", nargs="*", metavar="COMMAND|JSON")
    p.add_argument("--file", metavar="PATH", help="JSON Lines, one job per line ('-' = stdin)")
    p.add_argument("--id", help="the job's id (1-128 of A-Z a-z 0-9 . _ : @ + -; default: a "
                                "generated one); a duplicate id exits 4")
    p.add_argument("--max-retries", type=whole_number, metavar="N",
                   help="retries after the first run (default: the config's max-retries, 3)")
    p.add_argument("--priority", type=whole_number, metavar="N",
                   help="higher runs first (default 0)")
    p.add_argument("--run-at", metavar="TIME", help="ISO 8601 time, e.g. 2026-01-31T09:00:00Z")
    p.add_argument("--delay", type=duration, metavar="DURATION", help="e.g. 30, 10s, 5m, 2h")
    p.add_argument("--timeout", type=duration, metavar="DURATION", help="0 = no timeout")
    p.add_argument("--cwd", metavar="DIR",
                   help="run in this directory (default: the one you enqueue from)")
    p.add_argument("--env", action="append", metavar="KEY=VALUE", default=[],
                   help="an extra environment variable for the job (repeatable)")
    p.add_argument("--queue", metavar="NAME", help="the named queue (default: default)")
    p.add_argument("--after", metavar="ID[,ID…]",
                   help="run only after these jobs have completed (blocked until then; "
                        "cancelled if one ends dead or cancelled)")
    p.add_argument("--unique-key", metavar="KEY",
                   help="no second job with this key while this one is unfinished")
    p.add_argument("--unique-for", type=duration, metavar="DURATION",
                   help="with --unique-key: also this long after it finished")
    p.add_argument("--if-absent", action="store_true",
                   help="with --unique-key: if the key is taken, print that job's id, exit 0")
    p.add_argument("--no-retry-on", metavar="CODES",
                   help="exit codes (and 'timeout', 'oom') that go straight to the DLQ, e.g. "
                        "126,127 (default: the config's no-retry-on)")
    p.add_argument("--key", metavar="KEY",
                   help="a key for per-key limits (a customer, a host, an API): "
                        "`queue limit NAME --per-key N`, `queue rate ... --per-key`")
    p.add_argument("--cpus", metavar="N", help="cores it needs of its pool (e.g. 2, 0.5)")
    p.add_argument("--mem", metavar="SIZE",
                   help="memory it needs of its pool, also its enforced limit (e.g. 512M, 16G)")
    p.add_argument("--gpus", metavar="N", help="GPU devices it needs; it gets them in "
                                               "CUDA_VISIBLE_DEVICES")
    p.add_argument("--hold", action="store_true",
                   help="enqueue it held: it never starts until `queuectl release ID`")
    p.add_argument("--progress-regex", metavar="REGEX",
                   help=r"read its progress from its output lines: one group a percentage "
                        r"('(\d+)%%'), two done and total ('(\d+)/(\d+)')")


def run(args: argparse.Namespace) -> int:
    """One shell line, one JSON object, or a JSON Lines file.

    A text is taken as JSON only when it starts like a JSON object (`{"`); any
    other text, `{ echo a; }` and `[ -f x ]` included, is a shell command. Several
    words (as after `--`) are joined, quoted, into one command that runs as typed.
    """
    specs = specs_of(args)
    if args.if_absent and (args.file is not None or specs[0].unique_key is None):
        raise UsageError("--if-absent goes with one job that has a unique key")
    queue = open_queue(args)
    here = os.getcwd()  # a job runs where it was enqueued from, unless it says otherwise
    if args.file is None:
        from queuectl_tui.engine import Taken  # loads the engine: after open_queue
        try:
            job = queue.enqueue(specs[0], default_cwd=here)
        except Taken as taken:
            if not args.if_absent:
                raise
            job = queue.unique_holder(taken.key, taken.job_id)
            reply(args, {**job, "existing": True}, f"exists {taken.job_id}")
            return 0
        reply(args, job, f"enqueued {job['id']}"
              + (" held: it runs once released" if job["state"] == "held" else ""))
        if job["state"] != "held":
            say_if_no_worker(queue)
        return 0
    ids = queue.enqueue_many(specs, default_cwd=here)
    reply(args, {"enqueued": len(ids), "ids": ids}, f"enqueued {len(ids)} jobs")
    say_if_no_worker(queue)
    return 0


def specs_of(args: argparse.Namespace) -> list[Any]:
    """The jobs the command line describes, checked before the database is opened."""
    from queuectl_tui.engine import looks_like_json, parse_job_json, spec_from_mapping
    options = {"id": args.id, "max_retries": args.max_retries, "priority": args.priority,
               "run_at": args.run_at, "delay": args.delay, "timeout": args.timeout,
               "env": env_option(args.env) or None, "queue": args.queue,
               "after": args.after, "unique_key": args.unique_key,
               "unique_for": args.unique_for, "no_retry_on": args.no_retry_on,
               "key": args.key, "cpus": args.cpus, "mem": args.mem, "gpus": args.gpus,
               "hold": True if args.hold else None,
               "progress_regex": args.progress_regex,
               "cwd": None if args.cwd is None else os.path.abspath(args.cwd)}
    given = {k: v for k, v in options.items() if v is not None}
    text = None if not args.spec else args.spec[0] if len(args.spec) == 1 \
        else shlex.join(args.spec)
    if args.file is not None:
        if text is not None or set(given) - {"hold"}:
            raise UsageError("--file takes job fields from the file; give no command or "
                             "options (but --hold, which holds every job of it)")
        specs = read_spec_file(args.file)
        if args.hold:
            from dataclasses import replace
            specs = [replace(spec, hold=True) for spec in specs]
        return specs
    if text is None:
        raise UsageError("give a command, a JSON object, or --file PATH")
    if len(args.spec) == 1 and looks_like_json(text):
        data = parse_job_json(text)
        if not isinstance(data, dict):
            raise UsageError("a JSON job must be an object")
        if set(given) - {"cwd", "env", "hold"}:
            raise UsageError("put job fields inside the JSON, not as options")
        return [spec_from_mapping({**given, **data})]
    return [spec_from_mapping({"command": text, **given})]


def read_spec_file(path: str) -> list[Any]:
    """Every job of a JSON Lines file ('-': stdin), or a usage error naming the line."""
    from queuectl_tui.engine import parse_job_json, spec_from_mapping
    try:
        # Lines end at "\n" only (and "\r\n"): str.splitlines() would also split
        # inside a command at U+2028, U+0085 and friends, which JSON allows raw.
        if path == "-":
            lines = sys.stdin.buffer.read().decode("utf-8").split("\n")
        else:
            with open(path, encoding="utf-8", newline="") as fh:
                lines = fh.read().split("\n")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    specs = []
    for number, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            continue
        try:
            specs.append(spec_from_mapping(parse_job_json(line)))
        except UsageError as exc:
            raise UsageError(f"{path} line {number}: {exc}; nothing was enqueued") from None
    if not specs:
        raise UsageError(f"{path} has no jobs")
    return specs
