"""`queuectl list`: jobs, oldest first, as a table or a streamed JSON array."""

from __future__ import annotations

import argparse
from typing import Any, Iterable

from queuectl_tui.cli.args import positive_int
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import emit_json_array, progress_cell, reply, say, table
from queuectl_tui.cli.parser import Builder

JOB_HEADERS = ["ID", "STATE", "QUEUE", "TRIES", "PRI", "UPDATED (UTC)", "PROGRESS", "COMMAND"]


def add_parser(build: Builder) -> None:
    p = build.add("list", "list jobs, oldest first", build.as_json)
    p.add_argument("--state", metavar="STATE[,STATE…]", help="only jobs in these states")
    p.add_argument("--queue", metavar="NAME", help="only this queue's jobs")
    p.add_argument("--key", metavar="KEY", help="only jobs with this key (enqueue --key)")
    p.add_argument("--limit", type=positive_int, metavar="N")


def run(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import check_state, job_dict  # loads the engine: after parsing
    states = None
    if args.state is not None:
        states = [check_state(st.strip()) for st in args.state.split(",")]
    queue = open_queue(args, create=False)
    jobs = (job_dict(j) for j in queue.jobs(state=states, limit=args.limit, queue=args.queue,
                                           key=args.key))
    reply(args, jobs, lambda: print_jobs(args, jobs), emit=emit_json_array)
    return 0


def print_jobs(args: argparse.Namespace, jobs: Iterable[dict[str, Any]]) -> None:
    """The table, or on stderr what to do when it is empty."""
    if table((job_row(j) for j in jobs), JOB_HEADERS, [24, 19, 16, 6, 6, 19, 13]) == 0:
        say("no jobs" + (f" in state {args.state}" if args.state else "")
            + "; add one with: queuectl enqueue 'echo hello'")


def job_row(job: dict[str, Any]) -> list[Any]:
    state = f"{job['state']} (paused)" if job.get("paused") else job["state"]
    return [job["id"], state, job["queue"], f"{job['attempts']}/{job['max_retries'] + 1}",
            job["priority"], (job["updated_at"] or "")[:19].replace("T", " "),
            progress_cell(job["progress"]), job["command"]]
