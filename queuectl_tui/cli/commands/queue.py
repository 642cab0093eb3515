"""`queuectl queue list|pause|resume|limit|rate|retention|hook|max-timeout|progress`: the
named queues."""

from __future__ import annotations

import argparse
from typing import Any

from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply, say, table
from queuectl_tui.cli.parser import Builder
from queuectl_tui.engine import FINAL
from queuectl_tui.errors import UsageError

KEEP_FLAGS = {"completed": "--completed", "dead": "--dead", "cancelled": "--cancelled"}


def add_parser(build: Builder) -> None:
    actions = build.actions(build.add(
        "queue", "named queues: list them, pause, resume, limit, retention, finish hook, "
                 "max-timeout, progress pattern"))
    build.action(actions, "list", "every queue with its counts, limit and state")
    q = build.action(actions, "pause", "claim nothing new from these queues (running jobs "
                     "finish; enqueues are still accepted)")
    q.add_argument("names", nargs="+", metavar="NAME")
    q = build.action(actions, "resume", "claim from these queues again")
    q.add_argument("names", nargs="+", metavar="NAME")
    q = build.action(actions, "limit", "at most N jobs of the queue run at once, across "
                     "every worker and host (0 or none: no limit); --per-key N: at most N "
                     "of each key's jobs")
    q.add_argument("name", metavar="NAME")
    q.add_argument("limit", metavar="N|none", nargs="?")
    q.add_argument("--per-key", metavar="N|none", dest="per_key",
                   help="at most N running jobs per key value (enqueue --key); none: no "
                        "per-key limit")
    q = build.action(actions, "rate", "at most N of the queue's jobs start in any window of "
                     "PERIOD, across every worker and host (e.g. 100/1m, 5/1s; none: no rate)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("rate", metavar="N/PERIOD|none")
    q.add_argument("--per-key", action="store_true", dest="per_key",
                   help="the rate applies to each key value (enqueue --key) on its own")
    q = build.action(actions, "retention", "how long the queue keeps finished jobs, per "
                     "state (default: the config's retention-* keys)")
    q.add_argument("name", metavar="NAME")
    for state, flag in KEEP_FLAGS.items():
        q.add_argument(flag, metavar="DURATION", dest=f"keep_{state}",
                       help=f"keep {state} jobs this long (e.g. 1h, 7d), 'forever', or "
                            "'default' to follow the config")
    q = build.action(actions, "hook", "the command run after each of the queue's jobs "
                     "finishes ('none': no hook for this queue; 'default': the config's "
                     "finish-hook)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("hook_command", metavar="COMMAND|none|default")
    q = build.action(actions, "max-timeout", "the longest timeout a job of the queue may "
                     "extend its own to (`queuectl extend`); none: no bound")
    q.add_argument("name", metavar="NAME")
    q.add_argument("max_timeout", metavar="DURATION|none")
    q = build.action(actions, "progress", "the pattern the queue's jobs' output lines give "
                     "their progress by, unless a job names its own (none: no pattern)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("pattern", metavar="REGEX|none")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        found = open_queue(args, create=False).queue_list()
        reply(args, found, lambda: print_queues(found))
        return 0
    if args.action in ("pause", "resume"):
        return pause_or_resume(args)
    if args.action == "limit":
        return set_limit(args)
    if args.action == "rate":
        return set_rate(args)
    if args.action == "hook":
        return set_hook(args)
    if args.action == "max-timeout":
        return set_max_timeout(args)
    if args.action == "progress":
        return set_progress(args)
    return set_retention(args)


def pause_or_resume(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_queue_name  # loads the engine: after parsing
    names = [check_queue_name(name) for name in args.names]
    queue = open_queue(args)
    done = [queue.queue_set(name, paused=args.action == "pause") for name in names]
    verb = "paused" if args.action == "pause" else "resumed"
    reply(args, done, "\n".join(f"{verb} {q['name']} ({q['running']} running, "
                                f"{q['counts'].get('pending', 0)} pending)" for q in done))
    return 0


def set_limit(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_queue_name, parse_queue_limit
    name = check_queue_name(args.name)
    if args.limit is None and args.per_key is None:
        raise UsageError("queue limit needs N (or none), --per-key N, or both; "
                         "e.g. queue limit api 4 --per-key 2")
    fields: dict[str, int | None] = {}
    if args.limit is not None:
        fields["max_running"] = parse_queue_limit(args.limit)
    if args.per_key is not None:
        fields["key_limit"] = parse_queue_limit(args.per_key)
    row = open_queue(args).queue_set(name, **fields)
    reply(args, row, f"{name}: {describe_limits(row)}")
    return 0


def describe_limits(row: dict[str, Any]) -> str:
    parts = [f"at most {row['limit']} running at once" if row["limit"] else "no limit"]
    if row["per_key_limit"]:
        parts.append(f"at most {row['per_key_limit']} running per key")
    return ", ".join(parts)


def set_rate(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_queue_name, parse_rate
    name, rate = check_queue_name(args.name), parse_rate(args.rate)
    fields = dict(rate_limit=None, rate_period=None, rate_per_key=False) if rate is None else \
        dict(rate_limit=rate[0], rate_period=rate[1], rate_per_key=bool(args.per_key))
    row = open_queue(args).queue_set(name, **fields)
    reply(args, row, f"{name}: " + (f"at most {row['rate']['rate']} starts"
                                    if row["rate"] else "no rate limit"))
    return 0



def set_hook(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_config, check_queue_name
    name = check_queue_name(args.name)
    text = args.hook_command.strip()
    hook = None if text.lower() == "default" else check_config("finish-hook", text)
    row = open_queue(args).queue_set(name, finish_hook=hook)
    reply(args, row, f"{name}: the config's finish-hook" if hook is None else
          f"{name}: " + (f"runs {hook!r} after each job finishes" if hook else "no hook"))
    return 0


def set_max_timeout(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_queue_name, format_duration, parse_duration
    name = check_queue_name(args.name)
    text = args.max_timeout.strip().lower()
    seconds = None if text in ("none", "off") else parse_duration(text)
    row = open_queue(args).queue_max_timeout(name, seconds)
    reply(args, row, f"{name}: " + ("no max-timeout: a job may extend its timeout freely"
                                    if row["max_timeout"] is None else
                                    "a job may extend its timeout to at most "
                                    f"{format_duration(row['max_timeout'])}"))
    return 0


def set_progress(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_progress_pattern, check_queue_name
    name = check_queue_name(args.name)
    pattern = None if args.pattern.strip().lower() == "none" \
        else check_progress_pattern(args.pattern)
    row = open_queue(args).queue_set(name, progress_regex=pattern)
    reply(args, row, f"{name}: " + (f"progress read from output lines by {pattern!r}"
                                    if pattern else "no progress pattern"))
    return 0


def set_retention(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_config, check_queue_name
    name = check_queue_name(args.name)
    fields: dict[str, float | None] = {}
    for state in FINAL:
        raw = getattr(args, f"keep_{state}")
        if raw is None:
            continue
        if raw.strip().lower() == "default":
            fields[f"keep_{state}"] = None
        else:
            fields[f"keep_{state}"] = check_config(f"retention-{state}", raw)
    queue = open_queue(args, create=bool(fields))
    row = queue.queue_set(name, **fields) if fields else queue.queue_get(name)
    reply(args, row, lambda: print_retention(name, row, queue.config_all()))
    return 0


def print_retention(name: str, row: dict[str, Any], defaults: dict[str, Any]) -> None:
    for state in FINAL:
        own = row["retention"][state]
        keep = defaults[f"retention-{state}"] if own is None else own
        print(f"{name} keeps {state} jobs {describe_keep(keep)}"
              + (" (the config default)" if own is None else ""))


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
            rate_cell(q), q["per_key_limit"] or "-",
            q["counts"].get("pending", 0) + q["counts"].get("failed", 0),
            q["counts"].get("completed", 0), q["counts"].get("dead", 0),
            q["counts"].get("cancelled", 0), q["finished_last_minute"],
            describe_keep(q["max_timeout"]) if q.get("max_timeout") else "-")
           for q in found],
          ["QUEUE", "STATE", "RUNNING", "RATE", "PER-KEY", "WAITING", "COMPLETED", "DEAD",
           "CANCELLED", "DONE/MIN", "MAX-TIMEOUT"])


def rate_cell(q: dict[str, Any]) -> str:
    """'3/5 per 1m, next in 12s': used of allowed in the current window."""
    rate = q["rate"]
    if not rate:
        return "-"
    text = f"{rate['used']} of {rate['rate']}"
    if rate["next_start_in"] is not None:
        text += f", next in {rate['next_start_in']:.0f}s"
    return text
