"""The headless `queuectl` commands: parse, call the engine, print text or JSON.

No SQL here and no Textual: `queuectl` with no arguments imports the console
lazily, so scripted commands start in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys
import time
from typing import Any, Callable, NoReturn, Sequence

from queuectl_tui import (__version__, cli_completion, cli_metrics, cli_queues,
                          cli_schedules, cli_service)
from queuectl_tui.cli_output import clip, emit_json, emit_json_array, emit_json_lines, say, table
from queuectl_tui.safe_text import printable
from queuectl_tui.errors import (EXIT_JOB_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE,
                                 NoDatabase, QueuectlError, UsageError)

def duration(text: str) -> float:
    """argparse's face of the engine's duration parser: '90', '10s', '5m', '2h', '1d'."""
    from queuectl_tui.engine.durations import parse_duration
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


MAX_LIMIT = 1_000_000_000
WORKER_LOOK_S = 5.0  # how often `wait` looks whether any worker is alive


def whole_number(text: str) -> int:
    """Any ASCII whole number (the engine checks the range and says it)."""
    body = text.strip()
    if not (body.lstrip("+-").isascii() and body.lstrip("+-").isdigit()) or len(body) > 30:
        raise argparse.ArgumentTypeError(f"invalid whole number {text[:40]!r}")
    return int(body)


def positive_int(text: str, most: int = MAX_LIMIT) -> int:
    """A whole number from 1 to `most` (a billion: more rows than anyone lists)."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    if value > most:
        raise argparse.ArgumentTypeError(f"must be at most {most:,}, got {text.strip()[:40]}")
    return value


DEFAULT_GRACE_S = 10.0  # the engine's (engine/queue.py), kept here so --help needs no import
MAX_WORKERS = 64  # per pool: each worker is an interpreter (~25 MB); more pools for more


def worker_count(text: str) -> int:
    """1 to MAX_WORKERS: each worker is a process; more pools for more."""
    return positive_int(text, MAX_WORKERS)


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


class _NotBuilt:
    """Stands in for the parser of a command that is not being run: every call
    on it (add_argument, add_subparsers, add_parser) is accepted and ignored.

    argparse does real work for each parser and argument it is given (a help
    formatter, translation look-ups that stat the disk): for all the commands,
    about 10 ms here, paid on every `queuectl status`. Only the command being
    run needs its arguments.
    """

    def __getattr__(self, name: str) -> Callable[..., "_NotBuilt"]:
        return lambda *args, **kwargs: self


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

    def add(name: str, help_text: str, *parents: argparse.ArgumentParser) -> Parser:
        if only is not None and name != only:
            return _NotBuilt()  # type: ignore[return-value]
        return sub.add_parser(name, help=help_text, description=help_text,
                              parents=[common, *parents])

    p = add("enqueue", "add a job: a shell command, a JSON object, or a JSON Lines file; "
                       "`enqueue [options] -- ARGS…` runs ARGS as typed", as_json)
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
                   help="exit codes (and 'timeout') that go straight to the DLQ, e.g. "
                        "126,127 (default: the config's no-retry-on)")

    p = add("worker", "start, stop or list worker processes")
    wsub = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    w = wsub.add_parser("start", help="run N worker processes (in the foreground unless "
                        "--detach)", parents=[common, as_json])
    w.add_argument("--count", type=worker_count, default=1, metavar="N",
                   help=f"worker processes in this pool, 1 to {MAX_WORKERS} (default 1)")
    w.add_argument("--detach", action="store_true",
                   help="run the pool in the background; return once its workers are ready")
    w.add_argument("--log", metavar="FILE",
                   help="with --detach: the pool's log (default: workers.log in the "
                        "database's logs folder)")
    w.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="the pool's log lines on stderr (or in --log): text for people "
                        "(default) or JSON Lines")
    w.add_argument("--quiet", action="store_true",
                   help="leave out the job lines (claimed, finished, rescued); keep the "
                        "worker and pool ones")
    w.add_argument("--queues", metavar="NAME[,NAME…]",
                   help="serve only these queues, earlier names first (default: every "
                        "queue, in one order by priority and due time)")
    cli_metrics.add_worker_options(w)
    w = wsub.add_parser("stop", help="ask the pools of this host (or --host, --pool, --all) "
                        "to finish their jobs and exit", parents=[common, as_json])
    w.add_argument("--host", metavar="HOST",
                   help="the pools of this host (default: this one, $QUEUECTL_HOSTNAME or "
                        "the host name)")
    w.add_argument("--pool", type=positive_int, metavar="PID",
                   help="only the pool whose supervisor has this pid (on this host or --host)")
    w.add_argument("--all", action="store_true", help="every pool on every host")
    w.add_argument("--now", action="store_true",
                   help="do not finish running jobs: SIGTERM them, SIGKILL after --grace, "
                        "and put them back in the queue (attempt not counted)")
    w.add_argument("--grace", type=duration, default=DEFAULT_GRACE_S, metavar="DURATION",
                   help=f"with --now: time between SIGTERM and SIGKILL (default "
                        f"{DEFAULT_GRACE_S:g}s)")
    w.add_argument("--wait", action="store_true", help="wait until they have exited")
    w.add_argument("--timeout", type=duration, default=60.0, metavar="DURATION",
                   help="how long --wait waits (default 60s)")
    w = wsub.add_parser("list", help="workers and what they are doing", parents=[common, as_json])
    w.add_argument("--all", action="store_true", help="include stopped workers")

    p = add("status", "job counts per state and live workers", as_json)
    p.add_argument("--queue", metavar="NAME", help="only this queue's jobs")

    p = add("list", "list jobs, oldest first", as_json)
    p.add_argument("--state", metavar="STATE[,STATE…]", help="only jobs in these states")
    p.add_argument("--queue", metavar="NAME", help="only this queue's jobs")
    p.add_argument("--limit", type=positive_int, metavar="N")

    p = add("show", "everything about one job", as_json)
    p.add_argument("job_id", metavar="ID")
    p = add("logs", "print a job's full output log")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep printing until the job finishes; exit like `wait`")
    p.add_argument("--attempt", type=positive_int, metavar="N",
                   help="only the output of run N (see `show`)")

    p = add("wait", "block until jobs have finished; exit 0 if all completed, "
                    "6 if any ended dead or cancelled, 7 on timeout", as_json)
    p.add_argument("job_ids", nargs="+", metavar="ID")
    p.add_argument("--timeout", type=duration, metavar="DURATION",
                   help="give up after this long (exit 7); default: wait for ever")

    p = add("history", "state changes, newest first (JSON Lines with --json)", as_json)
    p.add_argument("--job", metavar="ID")
    p.add_argument("--limit", type=positive_int, metavar="N")

    p = add("dlq", "the dead-letter queue: list, retry, purge")
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    d = dsub.add_parser("list", help="dead jobs", parents=[common, as_json])
    d.add_argument("--limit", type=positive_int, metavar="N")
    d.add_argument("--queue", metavar="NAME", help="only this queue's dead jobs")
    d = dsub.add_parser("retry", help="move dead jobs back to pending (attempts reset)",
                        parents=[common, as_json])
    d.add_argument("job_ids", nargs="*", metavar="ID")
    d.add_argument("--all", action="store_true")
    d.add_argument("--queue", metavar="NAME", help="with --all: only this queue's dead jobs")
    d = dsub.add_parser("purge", help="delete every dead job", parents=[common, as_json])
    d.add_argument("--yes", action="store_true", help="do not ask")

    p = add("config", "read and change settings")
    csub = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    c = csub.add_parser("get", help="one value (every key when none is given)",
                        parents=[common, as_json])
    c.add_argument("key", nargs="?")
    c = csub.add_parser("set", help="validate and store a value", parents=[common, as_json])
    c.add_argument("key")
    c.add_argument("value")
    csub.add_parser("list", help="every key with its value", parents=[common, as_json])
    csub.add_parser("show", help="every key with its value (same as list)",
                    parents=[common, as_json])

    p = add("cancel", "stop jobs: waiting ones at once, running ones with SIGTERM then "
                      "SIGKILL", as_json)
    p.add_argument("job_ids", nargs="+", metavar="ID")
    p.add_argument("--grace", type=duration, default=DEFAULT_GRACE_S, metavar="DURATION",
                   help=f"for running jobs: time between SIGTERM and SIGKILL (default "
                        f"{DEFAULT_GRACE_S:g}s)")
    p.add_argument("--wait", action="store_true",
                   help="return once running jobs have really stopped")

    p = add("requeue", "run finished jobs (completed, dead, cancelled) again as the same "
                       "jobs; the retry budget starts afresh", as_json)
    p.add_argument("job_ids", nargs="*", metavar="ID")
    p.add_argument("--all-state", metavar="STATE", help="every job in this finished state")
    p = add("delete", "remove jobs that are not running", as_json)
    p.add_argument("job_ids", nargs="+", metavar="ID")

    p = add("demo", "enqueue a mix of passing, slow and failing jobs and start workers")
    p.add_argument("--workers", type=worker_count, default=2, metavar="N")
    p.add_argument("--no-workers", action="store_true", help="only enqueue")

    cli_service.add_parsers(add, common, worker_count, duration, Parser)
    cli_queues.add_parsers(add, common, as_json, duration, Parser)
    cli_schedules.add_parsers(add, common, as_json, duration, whole_number, Parser)
    cli_completion.add_parser(add)
    cli_metrics.add_parser(add)

    add("tui", "open the console (the same as no arguments)")
    return parser


# ---------------------------------------------------------------------------- engine access

def open_queue(args: argparse.Namespace, *, create: bool = True):
    """The queue the command works on. Commands that only read pass
    `create=False`: a mistyped path is an error, not a new empty database."""
    from queuectl_tui.engine import resolve_target, skip_postgres_driver
    skip_postgres_driver(resolve_target(getattr(args, "db", None)))
    from queuectl_tui.engine import open_database
    from queuectl_tui.engine.queue import Queue
    return Queue(open_database(getattr(args, "db", None), create=create))


NO_WORKER = ("queuectl: no worker is running on this database: start one with "
             "`queuectl worker start` (or `worker start --detach`)")


def say_if_no_worker(queue) -> bool:
    """Say on stderr (never in --json's stdout) that nothing will run the jobs
    until a pool starts; returns whether it was said."""
    if queue.any_worker_alive():
        return False
    say(NO_WORKER)
    return True


# ---------------------------------------------------------------------------- commands

def cmd_enqueue(args: argparse.Namespace) -> int:
    """One shell line, one JSON object, or a JSON Lines file.

    A text is taken as JSON only when it starts like a JSON object (`{"`); any
    other text, `{ echo a; }` and `[ -f x ]` included, is a shell command. Several
    words (as after `--`) are joined, quoted, into one command that runs as typed.
    """
    from queuectl_tui.engine import jobspec
    options = {"id": args.id, "max_retries": args.max_retries, "priority": args.priority,
               "run_at": args.run_at, "delay": args.delay, "timeout": args.timeout,
               "env": env_option(args.env) or None, "queue": args.queue,
               "after": args.after, "unique_key": args.unique_key,
               "unique_for": args.unique_for, "no_retry_on": args.no_retry_on,
               "cwd": None if args.cwd is None else os.path.abspath(args.cwd)}
    given = {k: v for k, v in options.items() if v is not None}
    text = None if not args.spec else args.spec[0] if len(args.spec) == 1 \
        else shlex.join(args.spec)
    if args.file is not None:
        if text is not None or given:
            raise UsageError("--file takes job fields from the file; give no command or options")
        specs = read_spec_file(args.file)
    elif text is None:
        raise UsageError("give a command, a JSON object, or --file PATH")
    elif len(args.spec) == 1 and jobspec.looks_like_json(text):
        data = jobspec.parse_json(text)
        if not isinstance(data, dict):
            raise UsageError("a JSON job must be an object")
        if set(given) - {"cwd", "env"}:
            raise UsageError("put job fields inside the JSON, not as options")
        specs = [jobspec.from_mapping({**given, **data})]
    else:
        specs = [jobspec.from_mapping({"command": text, **given})]
    if args.if_absent and (args.file is not None or specs[0].unique_key is None):
        raise UsageError("--if-absent goes with one job that has a unique key")
    queue = open_queue(args)
    here = os.getcwd()  # a job runs where it was enqueued from, unless it says otherwise
    if args.file is None:
        from queuectl_tui.engine.uniqueness import Taken
        try:
            job = queue.enqueue(specs[0], default_cwd=here)
        except Taken as taken:
            if not args.if_absent:
                raise
            job = queue.unique_holder(taken.key, taken.job_id)
            if args.json:
                emit_json({**job, "existing": True})
            else:
                print(f"exists {taken.job_id}")
            return 0
        if args.json:
            emit_json(job)
        else:
            print(f"enqueued {job['id']}")
        say_if_no_worker(queue)
        return 0
    ids = queue.enqueue_many(specs, default_cwd=here)
    if args.json:
        emit_json({"enqueued": len(ids), "ids": ids})
    else:
        print(f"enqueued {len(ids)} jobs")
    say_if_no_worker(queue)
    return 0


def env_option(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--env takes KEY=VALUE, got {pair!r}")
        env[name] = value
    return env


def read_spec_file(path: str) -> list:
    from queuectl_tui.engine import jobspec
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
            specs.append(jobspec.from_mapping(jobspec.parse_json(line)))
        except UsageError as exc:
            raise UsageError(f"{path} line {number}: {exc}; nothing was enqueued") from None
    if not specs:
        raise UsageError(f"{path} has no jobs")
    return specs


def cmd_worker(args: argparse.Namespace) -> int:
    if args.action == "start" and args.log and not args.detach:
        raise UsageError("--log goes with --detach (in the foreground the pool logs to stderr)")
    serving = None
    if args.action == "start" and args.queues is not None:
        from queuectl_tui.engine.queues import parse_names
        serving = parse_names(args.queues)
    if args.action == "start":
        cli_metrics.check_worker_options(args)
        check_log_option(args)
    try:
        queue = open_queue(args, create=args.action == "start")
    except NoDatabase:
        if args.action != "stop":
            raise
        return no_pool_runs(args)  # nothing to stop; a cleanup script under `set -e` goes on
    if args.action == "start" and args.detach:
        return worker_start_detached(queue, args, serving)
    if args.action == "start":
        from queuectl_tui.workers.pool_log import PoolLog
        from queuectl_tui.workers.supervisor import Supervisor
        events = PoolLog(args.log_format, jobs=not args.quiet)
        metrics = None if args.metrics_port is None else (args.metrics_port, args.metrics_host)
        return Supervisor(queue, queue.opened.target, args.count, events=events,
                          queues=serving, metrics=metrics).run()
    if args.action == "stop":
        return worker_stop(queue, args)
    workers = queue.workers(include_stopped=args.all)
    if args.json:
        emit_json(workers)
    elif not workers:
        print("no workers; start some with: queuectl worker start --count 2")
    else:
        print_workers(workers)
    return 0


def check_log_option(args: argparse.Namespace) -> None:
    """`--log FILE` goes in a folder that exists: a typo must not make folders."""
    if args.log is None:
        return
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(args.log)))
    if not os.path.isdir(folder):
        raise UsageError(f"--log {args.log}: no folder {folder}; create it first")


def _pool_said(log, start: int) -> str | None:
    """Why a detached pool stopped at start: its last error line in its log
    (a port in use, a bad --metrics-host, a database it cannot open)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(start)
            lines = fh.read()[-8192:].decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    lines = [line.strip() for line in lines if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    text = (errors or lines or [None])[-1]
    return None if text is None else printable(text.removeprefix("queuectl: error: "))[:300]


def no_pool_runs(args: argparse.Namespace) -> int:
    """`worker stop` where no database exists yet: no pool can run, so there
    is nothing to stop (exit 0), and nothing is created."""
    from queuectl_tui.engine import redact, resolve_target
    if args.json:
        emit_json({"asked": [], "still_running": [] if args.wait else None, "host": None,
                   "pool": args.pool, "others_running": 0})
    else:
        print(f"no pool runs on {redact(resolve_target(getattr(args, 'db', None)))} "
              "(no database yet): nothing to stop")
    return 0


def worker_start_detached(queue, args: argparse.Namespace,
                          serving: list[str] | None = None) -> int:
    from pathlib import Path

    from queuectl_tui.workers.supervisor import log_options, spawn_detached, wait_until_ready
    log = Path(args.log).expanduser().absolute() if args.log else queue.opened.pool_log
    if not args.log:
        from queuectl_tui.engine.logs import make_private_dir
        make_private_dir(log.parent)
    start = log.stat().st_size if log.exists() else 0  # this pool's lines come after
    try:
        proc = spawn_detached(queue.opened.target, args.count, log,
                              log_options(args.log_format == "json", args.quiet, serving)
                              + cli_metrics.worker_options(args))
    except OSError as exc:
        raise UsageError(f"cannot write the pool's log {log}: {exc.strerror}") from None
    try:
        pids = wait_until_ready(queue, proc, args.count)
    except QueuectlError as exc:
        reason = _pool_said(log, start)
        raise QueuectlError(f"{exc}" + (f": {reason}" if reason else "")
                            + f" (its log: {log})") from None
    if args.json:
        emit_json({"supervisor_pid": proc.pid, "worker_pids": pids, "log": str(log)})
    else:
        print(f"started a pool of {len(pids)} worker(s) in the background: supervisor pid "
              f"{proc.pid}, worker pids {', '.join(map(str, pids))}")
        print(f"log: {log}; stop it with: queuectl worker stop")
    return 0


def worker_stop(queue, args: argparse.Namespace) -> int:
    """Stop the pools of this host by default: on a shared PostgreSQL database,
    `worker stop` typed on one host must not stop every other host's pools
    (`--all` does, on purpose). A pool stopped this way exits 0, so a service
    unit's `Restart=on-failure` leaves it stopped, as asked."""
    if args.all and (args.host is not None or args.pool is not None):
        raise UsageError("--all stops every pool on every host: give it without --host "
                         "and --pool")
    host = None if args.all else (args.host or queue.host)
    ids = queue.stop_workers(now_grace=args.grace if args.now else None, host=host,
                             pool=args.pool)
    others = [w for w in queue.live_workers() if w["id"] not in ids]
    remaining = ids
    if args.wait and ids:
        deadline = time.monotonic() + args.timeout
        while remaining and time.monotonic() < deadline:
            time.sleep(0.1)
            live = {w["id"] for w in queue.live_workers()}
            remaining = [i for i in ids if i in live]
    where = ("" if host is None else f" on host {host}"
             + ("" if args.pool is None else f" in pool {args.pool}"))
    if args.json:
        emit_json({"asked": ids, "still_running": remaining if args.wait else None,
                   "host": host, "pool": args.pool, "others_running": len(others)})
        return 1 if args.wait and remaining else 0
    if others:
        hosts = sorted({w["host"] for w in others})
        say(f"{len(others)} other worker(s) keep running (host {', '.join(hosts)}); "
            "`queuectl worker stop --all` stops every pool on every host")
    if not ids:
        print(f"no live workers{where}")
    elif args.wait and remaining:
        print(f"asked {len(ids)} worker(s) to stop; {len(remaining)} still running after "
              f"{args.timeout:g} s")
    else:
        how = (f"now (running jobs get SIGTERM, SIGKILL after {args.grace:g} s, and go back "
               "to the queue)" if args.now else "after their current job")
        print(f"asked {len(ids)} worker(s){where} to stop {how}"
              + ("; all stopped" if args.wait else ""))
    return 1 if args.wait and remaining else 0


def print_workers(workers: list[dict]) -> None:
    table([(w["id"], w["host"], w["pid"], w["state"], w["job_id"] or "-",
            w["jobs_done"], w["jobs_failed"], f"{w['heartbeat_age']:.1f}s")
           for w in workers],
          ["WORKER", "HOST", "PID", "STATE", "JOB", "DONE", "FAILED", "HEARTBEAT"])


def cmd_status(args: argparse.Namespace) -> int:
    queue = open_queue(args, create=False)
    counts = queue.counts(args.queue)
    per_queue = ([queue.queue_get(args.queue)] if args.queue is not None
                 else queue.queue_list(recent=False, counts=counts))
    workers = queue.workers()  # live and gone; stopped ones are in `worker list --all`
    active = sum(w["state"] in ("idle", "busy", "stopping") for w in workers)
    stranded = queue.stranded() if counts.get("processing") else []
    if args.queue is not None:
        stranded = [s for s in stranded if s["id"] in
                    {j.id for j in queue.jobs(state="processing", queue=args.queue)}]
    if args.json:
        from queuectl_tui.engine import redact
        emit_json({"counts": counts, "total": sum(counts.values()), "active_workers": active,
                   "workers": workers, "hidden_gone_workers": queue.hidden_gone_workers(),
                   "queues": per_queue, "stranded": stranded,
                   "database": redact(queue.opened.target)})
        return 0
    print(("" if args.queue is None else f"queue {args.queue}: ")
          + "  ".join(f"{state} {n}" for state, n in counts.items())
          + f"  (total {sum(counts.values())})")
    if args.queue is None and (len(per_queue) > 1 or
                               any(q["paused"] or q["limit"] for q in per_queue)):
        for q in per_queue:
            print(f"  {q['name']:<16} " + "  ".join(
                f"{st} {q['counts'].get(st, 0)}" for st in ("pending", "processing", "failed",
                                                           "dead"))
                  + (f"  limit {q['limit']}" if q["limit"] else "")
                  + ("  PAUSED" if q["paused"] else ""))
    gone = len(workers) - active
    print(("no workers active" if active == 0 else
           f"{active} worker{'s' if active != 1 else ''} active")
          + (f", {gone} gone recently" if gone else "")
          + ("" if active else "; start some with: queuectl worker start --count 2"))
    if stranded:
        print(stranded_line(stranded))
    if workers:
        print_workers(workers)
    hidden = queue.hidden_gone_workers()
    if hidden:
        print(f"({hidden} worker(s) gone longer ago are not shown: queuectl worker list --all)")
    return 0


def stranded_line(stranded: list[dict]) -> str:
    """One line for jobs left `processing` by a worker that is gone."""
    n = len(stranded)
    ids = ", ".join(s["id"] for s in stranded[:5]) + (", …" if n > 5 else "")
    when = stranded[0]["note"].partition(": ")[2]
    return (f"{n} job{'s' if n != 1 else ''} processing with {'its' if n == 1 else 'their'} "
            f"worker gone ({printable(ids)}): {when}")


JOB_HEADERS = ["ID", "STATE", "QUEUE", "TRIES", "PRI", "UPDATED (UTC)", "COMMAND"]


def job_row(job: dict) -> list:
    return [job["id"], job["state"], job["queue"], f"{job['attempts']}/{job['max_retries'] + 1}",
            job["priority"], (job["updated_at"] or "")[:19].replace("T", " "), job["command"]]


def cmd_list(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_state, job_dict
    states = None
    if args.state is not None:
        states = [check_state(st.strip()) for st in args.state.split(",")]
    queue = open_queue(args, create=False)
    jobs = (job_dict(j) for j in queue.jobs(state=states, limit=args.limit, queue=args.queue))
    if args.json:
        emit_json_array(jobs)
    elif table((job_row(j) for j in jobs), JOB_HEADERS, [24, 10, 16, 6, 6, 19]) == 0:
        say("no jobs" + (f" in state {args.state}" if args.state else "")
            + "; add one with: queuectl enqueue 'echo hello'")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from queuectl_tui.engine.queue import job_dict
    queue = open_queue(args, create=False)
    job = job_dict(queue.get(args.job_id), with_output=True)  # with the output tails
    job["after"] = queue.job_dict(args.job_id)["after"]
    job["attempts_log"] = queue.attempts(args.job_id)
    gone = queue.stranded([job["id"]]) if job["state"] == "processing" else []
    job["worker_gone"] = bool(gone)
    if args.json:
        emit_json(job)
        return 0
    for key, value in job.items():
        if key == "after":
            value = ", ".join(f"{d['id']} ({d['state'] or 'gone'})" for d in value) or None
        if key not in ("stdout_tail", "stderr_tail", "attempts_log", "worker_gone"):
            shown = "-" if value is None else printable(str(value), keep_newlines=False)
            print(f"{key + ':':<13} {shown}")
    if gone:
        print(f"{'note:':<13} {gone[0]['note']}")
    for key in ("stdout_tail", "stderr_tail"):
        if job[key]:
            print(f"--- {key.replace('_tail', '')} (last {len(job[key])} chars) ---")
            print(printable(job[key].rstrip("\n")))
    if job["attempts_log"]:
        print("--- attempts ---")
        table([(a["number"], (a["started_at"] or "")[:19].replace("T", " "),
                "-" if a["duration"] is None else f"{a['duration']:.3f}s",
                "-" if a["exit_code"] is None else a["exit_code"], a["reason"],
                a["worker_id"] or "-", a["error"] or "")
               for a in job["attempts_log"]],
              ["RUN", "STARTED (UTC)", "TOOK", "EXIT", "ENDED BY", "WORKER", "ERROR"])
    return 0


LOG_CHUNK = 1 << 20  # `logs` holds at most this much of a log at a time


def cmd_logs(args: argparse.Namespace) -> int:
    queue = open_queue(args, create=False)
    job = queue.get(args.job_id)
    start, end = attempt_span(queue, job.id, args.attempt) if args.attempt else (0, None)
    offset = start
    said, next_look = False, 0.0  # whether a pool runs, as `wait` looks
    while True:
        offset = copy_log(queue, job, offset, end)
        if not args.follow:
            break
        done = queue.finished([job.id]).get(job.id)
        if done is not None:
            copy_log(queue, job, offset, end)
            return EXIT_OK if done.state == "completed" else EXIT_JOB_FAILED
        if not said and time.monotonic() >= next_look:
            said, next_look = say_if_no_worker(queue), time.monotonic() + WORKER_LOOK_S
        time.sleep(0.2)
    if offset == start and not args.follow:
        say(f"job {job.id} has no output " + (f"for run {args.attempt}" if args.attempt else "yet"))
    return 0


def copy_log(queue, job, offset: int, end: int | None) -> int:
    """Write the job's log from `offset` to `end` (None: as far as it goes now)
    to stdout, byte-exact, a bounded chunk at a time, so a log of any size costs
    LOG_CHUNK of memory. Returns the offset reached."""
    out = sys.stdout.buffer
    size = queue.log_size(job)
    stop = size if end is None else min(size, end)
    while offset < stop:
        chunk = queue.read_log_range(job, offset, min(LOG_CHUNK, stop - offset))
        if not chunk:
            break
        out.write(chunk)
        offset += len(chunk)
    out.flush()
    return offset


def attempt_span(queue, job_id: str, number: int) -> tuple[int, int | None]:
    """Where run `number` starts and ends in the job's log (end None: the end)."""
    from queuectl_tui.errors import NotFound
    runs = [a for a in queue.attempts(job_id) if a["log_offset"] is not None]
    mine = [a for a in runs if a["number"] == number]
    if not mine:
        raise NotFound(f"job {job_id} has no output recorded for run {number}")
    later = [a["log_offset"] for a in runs if a["log_offset"] > mine[0]["log_offset"]]
    return mine[0]["log_offset"], min(later) if later else None


def cmd_wait(args: argparse.Namespace) -> int:
    """Poll a cheap query four times a second: a finish is seen within 0.25 s
    and a wait costs next to no CPU, however long it lasts."""
    queue = open_queue(args, create=False)
    ids = list(dict.fromkeys(args.job_ids))
    for job_id in ids:
        queue.get(job_id)  # an unknown id is an error now, not a wait for ever
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    done: dict = {}
    said, next_look = False, 0.0  # whether a pool runs: looked at every few seconds
    while True:
        for job_id, job in queue.finished([i for i in ids if i not in done]).items():
            done[job_id] = job
            if not args.json:
                print(printable(f"{job_id} {job.state}") + (f": {printable(job.last_error)}" if job.last_error
                                                  and job.state != "completed" else ""),
                      flush=True)
        if len(done) == len(ids) or (deadline is not None and time.monotonic() >= deadline):
            break
        if not said and time.monotonic() >= next_look:
            said, next_look = say_if_no_worker(queue), time.monotonic() + WORKER_LOOK_S
        time.sleep(0.25)
    waiting = [i for i in ids if i not in done]
    if args.json:
        emit_json({"finished": [{"id": j.id, "state": j.state, "exit_code": j.exit_code,
                                 "last_error": j.last_error} for j in done.values()],
                   "still_waiting": waiting})
    elif waiting:
        say(f"queuectl: timed out after {args.timeout:g} s; still unfinished: "
            + ", ".join(waiting))
    if waiting:
        return EXIT_TIMEOUT
    return EXIT_OK if all(j.state == "completed" for j in done.values()) else EXIT_JOB_FAILED


def cmd_history(args: argparse.Namespace) -> int:
    queue = open_queue(args, create=False)
    if args.job is not None:
        queue.get(args.job)  # an unknown id is an error, not an empty history
    events = queue.history(args.job, args.limit)
    if args.json:
        emit_json_lines(events)
        return 0
    table(((e["at"][:23].replace("T", " "), e["job_id"], e["from"] or "-", e["to"],
            e["attempt"], "-" if e["exit_code"] is None else e["exit_code"],
            e["worker_id"] or "-", e["note"] or "") for e in events),
          ["AT", "JOB", "FROM", "TO", "TRY", "EXIT", "WORKER", "NOTE"])
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    from queuectl_tui.engine.queue import job_dict
    queue = open_queue(args, create=args.action != "list")
    if getattr(args, "queue", None) is not None:
        queue.queue_get(args.queue)  # an unknown queue is exit 3, not "the DLQ is empty"
    if args.action == "list":
        jobs = (job_dict(j) for j in queue.jobs(state="dead", limit=args.limit,
                                                 queue=args.queue))
        if args.json:
            emit_json_array(jobs)
        elif table(((j["id"], j["attempts"], (j["finished_at"] or "")[:19].replace("T", " "),
                     clip(j["last_error"], 50), j["command"]) for j in jobs),
                   ["ID", "TRIES", "DIED", "LAST ERROR", "COMMAND"], [24, 5, 19, 50]) == 0:
            say("the DLQ is empty")
        return 0
    if args.action == "retry":
        if args.all == bool(args.job_ids):
            raise UsageError("give job ids or --all (not both)")
        if args.queue is not None and not args.all:
            raise UsageError("--queue goes with --all")
        ids = queue.retry_all_dead(args.queue) if args.all else queue.retry_dead(args.job_ids)
        if args.json:
            emit_json({"retried": ids})
        else:
            print(f"retried {len(ids)} job(s): back to pending with attempts reset"
                  if ids else "the DLQ is empty")
        return 0
    count = queue.counts()["dead"]
    if not args.yes and count:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to delete {count} dead job(s) without --yes")
        answer = input(f"delete {count} dead job(s) for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            say("nothing deleted")
            return 1
    ids = queue.purge_dead()
    if args.json:
        emit_json({"purged": ids})
    else:
        print(f"purged {len(ids)} dead job(s)")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import config
    if args.action == "get" and args.key is None:
        args.action = "list"  # `config get` alone: every setting, as other queues do
    if args.action in ("get", "set"):
        key = config.canonical(args.key)
        if args.action == "set":
            config.validate(key, args.value)  # bad input fails before the database is opened
    try:
        queue = open_queue(args, create=args.action == "set")
    except NoDatabase as exc:
        queue = None  # no database yet: every key has its default, which is the truth
        say(f"queuectl: {exc}; until then every key has its default")
    if args.action in ("list", "show"):
        values = queue.config_all() if queue else config.defaults()
        if args.json:
            emit_json(values)
        else:
            table([(k, v, config.KEYS[k].help) for k, v in values.items()],
                  ["KEY", "VALUE", "MEANING"])
        return 0
    value = (queue.config_set(key, args.value) if args.action == "set"
             else queue.config_get(key) if queue else config.KEYS[key].default)
    if args.json:
        emit_json({"key": key, "value": value})
    else:
        print(value)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    queue = open_queue(args)
    results = queue.cancel(args.job_ids, grace=args.grace)
    stopping = [job_id for job_id, what in results if what == "stopping"]
    if args.wait and stopping:
        deadline = time.monotonic() + args.grace + 30  # a beat, the grace, the recording
        while time.monotonic() < deadline and len(queue.finished(stopping)) < len(stopping):
            time.sleep(0.2)
        finished = queue.finished(stopping)
        results = [(job_id, finished[job_id].state if job_id in finished else what)
                   for job_id, what in results]
    if args.json:
        emit_json({"results": [{"id": job_id, "result": what} for job_id, what in results]})
    else:
        for job_id, what in results:
            if what == "stopping":
                print(f"stopping {job_id}: SIGTERM within a second, SIGKILL after "
                      f"{args.grace:g} s; it will end cancelled")
            else:
                print(f"{job_id} {what}")
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    if (args.all_state is None) == (not args.job_ids):
        raise UsageError("give job ids or --all-state STATE (not both)")
    queue = open_queue(args)
    ids = queue.requeue_all(args.all_state) if args.all_state else queue.requeue(args.job_ids)
    if args.json:
        emit_json({"requeued": ids})
    else:
        print(f"requeued {len(ids)} job(s): pending again (blocked while a job they wait for "
              "has not completed), retry budget afresh")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    ids = open_queue(args).delete(args.job_ids)
    if args.json:
        emit_json({"deleted": ids})
    else:
        print(f"deleted {len(ids)} job(s)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from queuectl_tui.demo import enqueue_demo
    queue = open_queue(args)
    ids = enqueue_demo(queue)
    from queuectl_tui.engine import redact
    print(f"enqueued {len(ids)} demo jobs into {redact(queue.opened.target)}")
    if args.no_workers:
        print("start workers with: queuectl worker start --count 2")
        return 0
    print("watch them from another terminal with: queuectl   (or: queuectl status)")
    from queuectl_tui.workers.supervisor import Supervisor
    return Supervisor(queue, queue.opened.target, args.workers).run()


def has_terminal() -> bool:
    """Whether the console can draw and read keys: stdin and stdout both a tty."""
    try:
        return os.isatty(sys.stdin.fileno()) and os.isatty(sys.stdout.fileno())
    except (AttributeError, ValueError, OSError):  # closed or replaced streams
        return False


def cmd_no_terminal(args: argparse.Namespace) -> int:
    """`queuectl` alone without a terminal (cron, `ssh host queuectl` without
    -t, a pipe): a full-screen console would hang there, so print `status`
    (or, with no database yet, the help) and exit 0."""
    say("queuectl: no terminal for the console; here is `queuectl status` "
        "(`ssh -t` gives the console a terminal)")
    try:
        return cmd_status(argparse.Namespace(**vars(args), queue=None, json=False))
    except QueuectlError as exc:
        say(f"queuectl: {exc}")
        build_parser().print_help()
        return EXIT_OK


def cmd_tui(args: argparse.Namespace) -> int:
    if not has_terminal():
        raise UsageError("the console needs a terminal (stdin and stdout); for a report "
                         "without one: queuectl status")
    try:
        from queuectl_tui.console.app import run_console
    except ImportError as exc:
        raise QueuectlError(f"the console is not available: {exc}") from None
    return run_console(getattr(args, "db", None))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "enqueue": cmd_enqueue, "worker": cmd_worker, "status": cmd_status, "list": cmd_list,
    "show": cmd_show, "logs": cmd_logs, "history": cmd_history, "dlq": cmd_dlq,
    "config": cmd_config, "cancel": cmd_cancel, "requeue": cmd_requeue, "wait": cmd_wait,
    "delete": cmd_delete, "demo": cmd_demo, "service": cli_service.cmd_service,
    "queue": lambda args: cli_queues.cmd_queue(args, open_queue),
    "prune": lambda args: cli_queues.cmd_prune(args, open_queue),
    "schedule": lambda args: cli_schedules.cmd_schedule(args, open_queue),
    "completion": cli_completion.cmd_completion,
    "metrics": lambda args: cli_metrics.cmd_metrics(args, open_queue),
    "tui": cmd_tui,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "_ARGCOMPLETE" in os.environ:  # a shell asking for completions: answer and exit
        cli_completion.complete(build_parser())  # completion walks every command
    parser = build_parser(command_in(argv))
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}" + _dash_dash_hint(args))
    if args.command not in (None, "tui"):
        # Before any handler imports the engine: a command on a SQLite file never
        # needs the PostgreSQL driver, which Peewee imports (with ssl) if it can:
        # 15-30 ms that `list`, `show`, `config`... paid before this.
        from queuectl_tui.engine import resolve_target, skip_postgres_driver
        skip_postgres_driver(resolve_target(getattr(args, "db", None)))
    handler = COMMANDS.get(args.command or "tui")
    if args.command is None and not has_terminal():
        handler = cmd_no_terminal
    try:
        return handler(args)
    except QueuectlError as exc:
        say(f"queuectl: error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `queuectl list | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # database driver errors, disk full, ...
        return _unexpected(exc, args)


def _dash_dash_hint(args: argparse.Namespace) -> str:
    """For `enqueue ls -la` and `schedule add … ./backup.sh --full`: the
    command's own options went to queuectl; `--` keeps them the command's."""
    if args.command == "enqueue":
        return " (a command's own options go after `--`: queuectl enqueue [options] -- ls -la)"
    if args.command == "schedule" and getattr(args, "action", None) == "add":
        return (" (a command's own options go after `--`: queuectl schedule add NAME --cron "
                "EXPR [options] -- ./backup.sh --full)")
    return ""


def _unexpected(exc: Exception, args: argparse.Namespace) -> int:
    from queuectl_tui.engine import describe_db_error, is_sqlite_error, resolve_target
    from queuectl_tui.errors import EXIT_DATABASE, EXIT_FAILURE
    if is_sqlite_error(exc) or _is_driver_error(exc):
        say(f"queuectl: error: {describe_db_error(exc, resolve_target(getattr(args, 'db', None)))}")
        return EXIT_DATABASE
    if isinstance(exc, OSError):
        say(f"queuectl: error: {exc.strerror or exc} ({exc.filename or socket.gethostname()})")
        return EXIT_FAILURE
    say(f"queuectl: internal error: {exc.__class__.__name__}: {exc} "
        "(please report this with the command you ran)")
    return EXIT_FAILURE


def _is_driver_error(exc: Exception) -> bool:
    return type(exc).__module__.split(".")[0] in ("peewee", "psycopg2", "psycopg")
