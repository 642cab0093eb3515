"""`queuectl result set JSON|-`, `queuectl result ID`, `queuectl result --deps`:
a small JSON result a running job stores about itself, read back by id, and
the results of the jobs a job was enqueued `--after` (from inside it).

`result set` prints nothing (a job's stdout is its log) unless `--json`. A
result prints as stored, byte for byte, when stdout is a pipe or with
`--json`; on a terminal, control characters are shown escaped.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Iterable

from queuectl_tui.cli.in_job import add_job_option, target
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import UsageError
from queuectl_tui.safe_text import printable

USAGE = "give ID, set JSON|-, or --deps (e.g. queuectl result set '{\"rows\": 42}')"


def add_parser(build: Builder) -> None:
    p = build.add("result", "a job's result: `result set JSON|-` from inside a running job "
                            "stores one, `result ID` prints it, `result --deps` prints the "
                            "results of the jobs this one ran --after", build.as_json)
    p.add_argument("words", nargs="*", metavar="ID | set JSON|-")
    p.add_argument("--deps", action="store_true",
                   help="the results of the jobs this one was enqueued --after, as a JSON "
                        "object {id: result or null}")
    add_job_option(p)  # with set or --deps


def run(args: argparse.Namespace) -> int:
    words = args.words
    if args.deps:
        if words:
            raise UsageError("--deps takes no other words (--job ID names the job)")
        return print_dependencies(args)
    if len(words) == 2 and words[0] == "set":
        return store(args, words[1])
    if len(words) == 1 and words[0] != "set":
        if args.job is not None:
            raise UsageError("result ID reads that job's result; --job goes with set or --deps")
        show(args, open_queue(args, create=False).result_of(words[0]))
        return 0
    raise UsageError(USAGE)


def store(args: argparse.Namespace, given: str) -> int:
    from queuectl_tui.engine import RESULT_MOST_BYTES
    text = read_stdin(RESULT_MOST_BYTES) if given == "-" else given
    job = target(args)
    size = open_queue(args, create=False).set_result(job.job_id, job.token, text)
    reply(args, {"id": job.job_id, "bytes": size}, lambda: None)
    return 0


def read_stdin(most: int) -> str:
    data = sys.stdin.buffer.read(most + 1)
    if len(data) > most:
        raise UsageError(f"result is more than {most:,} bytes (the most config "
                         "result-max-bytes allows)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"result is not UTF-8 text (byte {exc.start})") from None


def show(args: argparse.Namespace, text: str) -> None:
    """Exact for programs (a pipe, --json); escaped for a person's terminal."""
    if not args.json and sys.stdout.isatty():
        text = printable(text)
    sys.stdout.write(text + "\n")


def print_dependencies(args: argparse.Namespace) -> int:
    found = open_queue(args, create=False).dependency_results(target(args).job_id)
    show(args, "".join(as_object(found)))
    return 0


def as_object(pairs: Iterable[tuple[str, str | None]]) -> Iterable[str]:
    """{"id": result, ...}: each stored result as it was stored (JSON already)."""
    yield "{"
    for i, (dep, text) in enumerate(pairs):
        yield ("" if i == 0 else ", ") + json.dumps(dep) + ": " + (text or "null")
    yield "}"
