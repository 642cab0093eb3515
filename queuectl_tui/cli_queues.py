"""The headless commands for named queues and retention: `queue …` and `prune`.

Kept apart from cli.py so that file stays about jobs and workers; the same
rules hold (no SQL, no Textual, JSON only on stdout with --json).
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from queuectl_tui.cli_output import emit_json, say, table
from queuectl_tui.errors import UsageError

FINAL = ("completed", "dead", "cancelled")
KEEP_FLAGS = {"completed": "--completed", "dead": "--dead", "cancelled": "--cancelled"}


def add_parsers(add: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser,
                as_json: argparse.ArgumentParser, duration: Callable[[str], float],
                parser_class: type) -> None:
    p = add("queue", "named queues: list them, pause, resume, limit, retention, finish hook")
    qsub = p.add_subparsers(dest="action", metavar="ACTION", required=True,
                            parser_class=parser_class)
    qsub.add_parser("list", help="every queue with its counts, limit and state",
                    parents=[common, as_json])
    q = qsub.add_parser("pause", help="claim nothing new from these queues (running jobs "
                        "finish; enqueues are still accepted)", parents=[common, as_json])
    q.add_argument("names", nargs="+", metavar="NAME")
    q = qsub.add_parser("resume", help="claim from these queues again",
                        parents=[common, as_json])
    q.add_argument("names", nargs="+", metavar="NAME")
    q = qsub.add_parser("limit", help="at most N jobs of the queue run at once, across "
                        "every worker and host (0 or none: no limit)", parents=[common, as_json])
    q.add_argument("name", metavar="NAME")
    q.add_argument("limit", metavar="N|none")
    q = qsub.add_parser("retention", help="how long the queue keeps finished jobs, per "
                        "state (default: the config's retention-* keys)",
                        parents=[common, as_json])
    q.add_argument("name", metavar="NAME")
    for state, flag in KEEP_FLAGS.items():
        q.add_argument(flag, metavar="DURATION", dest=f"keep_{state}",
                       help=f"keep {state} jobs this long (e.g. 1h, 7d), 'forever', or "
                            "'default' to follow the config")

    q = qsub.add_parser("hook", help="the command run after each of the queue's jobs "
                        "finishes ('none': no hook for this queue; 'default': the config's "
                        "finish-hook)", parents=[common, as_json])
    q.add_argument("name", metavar="NAME")
    q.add_argument("hook_command", metavar="COMMAND|none|default")

    p = add("prune", "delete finished jobs past their retention now (with their events, "
                     "attempts and logs)", as_json)
    p.add_argument("--queue", metavar="NAME", help="only this queue")
    p.add_argument("--state", metavar="STATE[,STATE…]",
                   help="only these finished states (completed, dead, cancelled)")
    p.add_argument("--older-than", type=duration, metavar="DURATION",
                   help="every finished job older than this, whatever the retention settings")
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")


def cmd_queue(args: argparse.Namespace, open_queue: Callable[..., Any]) -> int:
    from queuectl_tui.engine import queues
    if args.action == "list":
        found = open_queue(args, create=False).queue_list()
        if args.json:
            emit_json(found)
        else:
            print_queues(found)
        return 0
    if args.action in ("pause", "resume"):
        names = [queues.check_name(name) for name in args.names]
        queue = open_queue(args)
        done = [queue.queue_set(name, paused=args.action == "pause") for name in names]
        if args.json:
            emit_json(done)
        else:
            verb = "paused" if args.action == "pause" else "resumed"
            for q in done:
                print(f"{verb} {q['name']} ({q['running']} running, "
                      f"{q['counts'].get('pending', 0)} pending)")
        return 0
    if args.action == "limit":
        name, limit = queues.check_name(args.name), queues.parse_limit(args.limit)
        row = open_queue(args).queue_set(name, max_running=limit)
        if args.json:
            emit_json(row)
        else:
            print(f"{name}: " + (f"at most {limit} running at once" if limit else "no limit"))
        return 0
    if args.action == "hook":
        return set_hook(args, open_queue)
    return set_retention(args, open_queue)


def set_hook(args: argparse.Namespace, open_queue: Callable[..., Any]) -> int:
    from queuectl_tui.engine import config, queues
    name = queues.check_name(args.name)
    text = args.hook_command.strip()
    hook = None if text.lower() == "default" else config.validate("finish-hook", text)
    row = open_queue(args).queue_set(name, finish_hook=hook)
    if args.json:
        emit_json(row)
    elif hook is None:
        print(f"{name}: the config's finish-hook")
    else:
        print(f"{name}: " + (f"runs {hook!r} after each job finishes" if hook else "no hook"))
    return 0


def set_retention(args: argparse.Namespace, open_queue: Callable[..., Any]) -> int:
    from queuectl_tui.engine import config, queues
    name = queues.check_name(args.name)
    fields: dict[str, float | None] = {}
    for state in FINAL:
        raw = getattr(args, f"keep_{state}")
        if raw is None:
            continue
        if raw.strip().lower() == "default":
            fields[f"keep_{state}"] = None
        else:
            fields[f"keep_{state}"] = config.validate(f"retention-{state}", raw)
    queue = open_queue(args, create=bool(fields))
    row = queue.queue_set(name, **fields) if fields else queue.queue_get(name)
    if args.json:
        emit_json(row)
    else:
        defaults = queue.config_all()
        for state in FINAL:
            own = row["retention"][state]
            keep = defaults[f"retention-{state}"] if own is None else own
            print(f"{name} keeps {state} jobs {describe_keep(keep)}"
                  + (" (the config default)" if own is None else ""))
    return 0


def describe_keep(seconds: float) -> str:
    if not seconds:
        return "forever"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:g}{unit}"
    return f"{seconds:g}s"


def print_queues(found: list[dict]) -> None:
    if not found:
        say("no queues yet; enqueue a job with --queue NAME to make one")
        return
    table([(q["name"], "paused" if q["paused"] else "active",
            f"{q['running']}/{q['limit']}" if q["limit"] else f"{q['running']}/-",
            q["counts"].get("pending", 0) + q["counts"].get("failed", 0),
            q["counts"].get("completed", 0), q["counts"].get("dead", 0),
            q["counts"].get("cancelled", 0), q["finished_last_minute"])
           for q in found],
          ["QUEUE", "STATE", "RUNNING", "WAITING", "COMPLETED", "DEAD", "CANCELLED",
           "DONE/MIN"])


def cmd_prune(args: argparse.Namespace, open_queue: Callable[..., Any]) -> int:
    from queuectl_tui.engine import queues
    from queuectl_tui.engine import check_state
    states = list(FINAL)
    if args.state is not None:
        states = [check_state(st.strip()) for st in args.state.split(",") if st.strip()]
        if not states or any(st not in FINAL for st in states):
            raise UsageError(f"--state takes finished states: {', '.join(FINAL)}")
    if args.queue is not None:
        queues.check_name(args.queue)
    queue = open_queue(args, create=False)
    pruned, _ = queue.prune(queue=args.queue, states=states, older_than=args.older_than,
                            dry_run=args.dry_run)
    if args.json:
        emit_json({"dry_run": args.dry_run, "pruned": pruned.total,
                   "by_state": {st: pruned.counts.get(st, 0) for st in states}})
        return 0
    verb = "would prune" if args.dry_run else "pruned"
    parts = ", ".join(f"{st} {pruned.counts.get(st, 0)}" for st in states)
    print(f"{verb} {pruned.total} job(s): {parts}")
    return 0
