"""`queuectl dlq list|groups|retry|delete|purge`: the dead-letter queue, job by
job or a failure group at a time."""

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

GROUP_HELP = "a failure group's id (or the start of one), as `dlq groups` shows it"


def add_parser(build: Builder) -> None:
    actions = build.actions(build.add(
        "dlq", "the dead-letter queue: list, group, retry, delete, purge"))
    d = build.action(actions, "list", "dead jobs")
    d.add_argument("--limit", type=positive_int, metavar="N")
    d.add_argument("--queue", metavar="NAME", help="only this queue's dead jobs")
    d.add_argument("--group", metavar="G", help="only this failure group's dead jobs")
    d = build.action(actions, "groups", "dead jobs grouped by how they failed")
    d.add_argument("--queue", metavar="NAME", help="only this queue's dead jobs")
    d = build.action(actions, "retry", "move dead jobs back to pending (attempts reset)")
    d.add_argument("job_ids", nargs="*", metavar="ID")
    d.add_argument("--all", action="store_true")
    d.add_argument("--group", metavar="G", help=GROUP_HELP)
    d.add_argument("--queue", metavar="NAME",
                   help="with --all or --group: only this queue's dead jobs")
    d = build.action(actions, "delete", "delete the dead jobs of one failure group")
    d.add_argument("--group", metavar="G", required=True, help=GROUP_HELP)
    d.add_argument("--queue", metavar="NAME", help="only this queue's dead jobs of the group")
    d.add_argument("--yes", action="store_true", help="do not ask")
    d = build.action(actions, "purge", "delete every dead job")
    d.add_argument("--yes", action="store_true", help="do not ask")


def run(args: argparse.Namespace) -> int:
    queue = open_queue(args, create=args.action not in ("list", "groups"))
    if getattr(args, "queue", None) is not None:
        queue.queue_get(args.queue)  # an unknown queue is exit 3, not "the DLQ is empty"
    if args.action == "list":
        return list_dead(queue, args)
    if args.action == "groups":
        return groups(queue, args)
    if args.action == "retry":
        return retry(queue, args)
    if args.action == "delete":
        return delete_group(queue, args)
    return purge(queue, args)


def list_dead(queue: Queue, args: argparse.Namespace) -> int:
    from queuectl_tui.engine import job_dict
    jobs = (job_dict(j) for j in queue.jobs(state="dead", limit=args.limit, queue=args.queue,
                                            group=args.group))
    reply(args, jobs, lambda: print_dead(jobs, args.group), emit=emit_json_array)
    return 0


def print_dead(jobs: Iterable[dict[str, Any]], group: str | None = None) -> None:
    if table(((j["id"], j["attempts"], (j["finished_at"] or "")[:19].replace("T", " "),
               clip(j["last_error"], 50), j["command"]) for j in jobs),
             ["ID", "TRIES", "DIED", "LAST ERROR", "COMMAND"], [24, 5, 19, 50]) == 0:
        say("the group has no dead job left" if group else "the DLQ is empty")


def groups(queue: Queue, args: argparse.Namespace) -> int:
    found = [g.public() for g in queue.dlq_groups(args.queue)]
    reply(args, found, lambda: print_groups(found, args.queue))
    return 0


def print_groups(found: list[dict[str, Any]], queue_name: str | None = None) -> None:
    """One line a group: its id, how many, when, its newest job; `dlq list
    --group G` shows its jobs, `dlq retry --group G` runs them again."""
    from queuectl_tui.engine import failure_signature_shown
    rows = ((g["group"], f"{g['count']:,}", _minute(g["first_seen"]), _minute(g["last_seen"]),
             g["sample_id"] or "", clip(", ".join(g["queues"]), 20),
             failure_signature_shown(g["signature"])) for g in found)
    if table(rows, ["GROUP", "COUNT", "FIRST DIED", "LAST DIED", "SAMPLE", "QUEUES",
                    "SIGNATURE"], [8, 9, 16, 16, 24, 20]) == 0:
        say(f"queue {queue_name} has no dead job" if queue_name else "the DLQ is empty")


def _minute(when: str | None) -> str:
    return (when or "")[:16].replace("T", " ")


def retry(queue: Queue, args: argparse.Namespace) -> int:
    chosen = sum((bool(args.job_ids), args.all, args.group is not None))
    if chosen != 1:
        raise UsageError("give job ids or --all or --group G (one of them)")
    if args.queue is not None and not (args.all or args.group is not None):
        raise UsageError("--queue goes with --all or --group")
    if args.job_ids:
        ids = queue.retry_dead(args.job_ids)
    else:
        ids = queue.retry_all_dead(args.queue, args.group)
    nothing = "the DLQ is empty" if args.group is None else \
        f"group {args.group} has no dead job" + (f" in queue {args.queue}" if args.queue else "")
    reply(args, {"retried": ids}, f"retried {len(ids)} job(s): back to pending with attempts "
                                  "reset" if ids else nothing)
    return 0


def delete_group(queue: Queue, args: argparse.Namespace) -> int:
    """Delete a failure group's dead jobs; at a terminal it asks first, saying
    how many, elsewhere it wants --yes."""
    if not args.yes:
        group = queue.dlq_group(args.group, args.queue)  # unknown: exit 3 before asking
        if group.count and not confirmed(
                f"delete the {group.count} dead job(s) of group {group.group} for good?",
                f"refusing to delete {group.count} dead job(s) without --yes"):
            return 1
    ids = queue.purge_dead(args.group, args.queue)
    reply(args, {"deleted": ids}, f"deleted {len(ids)} dead job(s)")
    return 0


def purge(queue: Queue, args: argparse.Namespace) -> int:
    """Delete every dead job; at a terminal it asks first, elsewhere it wants --yes."""
    count = queue.counts()["dead"]
    if not args.yes and count and not confirmed(
            f"delete {count} dead job(s) for good?",
            f"refusing to delete {count} dead job(s) without --yes"):
        return 1
    ids = queue.purge_dead()
    reply(args, {"purged": ids}, f"purged {len(ids)} dead job(s)")
    return 0


def confirmed(question: str, refusal: str) -> bool:
    """A yes typed at a terminal; without a terminal, --yes was needed (exit 2)."""
    if not sys.stdin.isatty():
        raise UsageError(refusal)
    if input(f"{question} [y/N] ").strip().lower() in ("y", "yes"):
        return True
    say("nothing deleted")
    return False
