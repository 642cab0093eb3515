"""`queuectl logs ID [-f] [--attempt N]`: a job's output log, byte-exact."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from queuectl_tui.cli.args import positive_int
from queuectl_tui.cli.opening import WORKER_LOOK_S, open_queue, say_if_no_worker
from queuectl_tui.cli.output import say
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import EXIT_JOB_FAILED, EXIT_OK, NotFound

if TYPE_CHECKING:
    from queuectl_tui.engine import Queue

LOG_CHUNK = 1 << 20  # `logs` holds at most this much of a log at a time


def add_parser(build: Builder) -> None:
    p = build.add("logs", "print a job's full output log")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep printing until the job finishes; exit like `wait`")
    p.add_argument("--attempt", type=positive_int, metavar="N",
                   help="only the output of run N (see `show`)")


def run(args: argparse.Namespace) -> int:
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


def copy_log(queue: Queue, job: Any, offset: int, end: int | None) -> int:
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


def attempt_span(queue: Queue, job_id: str, number: int) -> tuple[int, int | None]:
    """Where run `number` starts and ends in the job's log (end None: the end)."""
    runs = [a for a in queue.attempts(job_id) if a["log_offset"] is not None]
    mine = [a for a in runs if a["number"] == number]
    if not mine:
        raise NotFound(f"job {job_id} has no output recorded for run {number}")
    later = [a["log_offset"] for a in runs if a["log_offset"] > mine[0]["log_offset"]]
    return mine[0]["log_offset"], min(later) if later else None
