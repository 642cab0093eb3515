"""`queuectl dlq list|retry|purge`: the dead-letter queue."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Iterable

from queuectl_tui.cli.args import positive_int
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import clip, emit_json_array, reply, say, table
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import UsageError

if TYPE_CHECKING:
    from queuectl_tui.engine import Queue


def add_parser(build: Builder) -> None:
    actions = build.actions(build.add("dlq", "the dead-letter queue: list, retry, purge"))
    d = build.action(actions, "list", "dead jobs")
    d.add_argument("--limit", type=positive_int, metavar="N")
    d.add_argument("--queue", metavar="NAME", help="only this queue's dead jobs")
    d = build.action(actions, "retry", "move dead jobs back to pending (attempts reset)")
    d.add_argument("job_ids", nargs="*", metavar="ID")
    d.add_argument("--all", action="store_true")
    d.add_argument("--queue", metavar="NAME", help="with --all: only this queue's dead jobs")
    d = build.action(actions, "purge", "delete every dead job")
    d.add_argument("--yes", action="store_true", help="do not ask")


def run(args: argparse.Namespace) -> int:
    queue = open_queue(args, create=args.action != "list")
    if getattr(args, "queue", None) is not None:
        queue.queue_get(args.queue)  # an unknown queue is exit 3, not "the DLQ is empty"
    if args.action == "list":
        return list_dead(queue, args)
    if args.action == "retry":
        return retry(queue, args)
    return purge(queue, args)


def list_dead(queue: Queue, args: argparse.Namespace) -> int:
    from queuectl_tui.engine import job_dict
    jobs = (job_dict(j) for j in queue.jobs(state="dead", limit=args.limit, queue=args.queue))
    reply(args, jobs, lambda: print_dead(jobs), emit=emit_json_array)
    return 0


def print_dead(jobs: Iterable[dict[str, Any]]) -> None:
    if table(((j["id"], j["attempts"], (j["finished_at"] or "")[:19].replace("T", " "),
               clip(j["last_error"], 50), j["command"]) for j in jobs),
             ["ID", "TRIES", "DIED", "LAST ERROR", "COMMAND"], [24, 5, 19, 50]) == 0:
        say("the DLQ is empty")


def retry(queue: Queue, args: argparse.Namespace) -> int:
    if args.all == bool(args.job_ids):
        raise UsageError("give job ids or --all (not both)")
    if args.queue is not None and not args.all:
        raise UsageError("--queue goes with --all")
    ids = queue.retry_all_dead(args.queue) if args.all else queue.retry_dead(args.job_ids)
    reply(args, {"retried": ids}, f"retried {len(ids)} job(s): back to pending with attempts "
                                  "reset" if ids else "the DLQ is empty")
    return 0


def purge(queue: Queue, args: argparse.Namespace) -> int:
    """Delete every dead job; at a terminal it asks first, elsewhere it wants --yes."""
    count = queue.counts()["dead"]
    if not args.yes and count:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to delete {count} dead job(s) without --yes")
        answer = input(f"delete {count} dead job(s) for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            say("nothing deleted")
            return 1
    ids = queue.purge_dead()
    reply(args, {"purged": ids}, f"purged {len(ids)} dead job(s)")
    return 0
