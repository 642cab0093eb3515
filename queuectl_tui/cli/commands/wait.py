"""`queuectl wait ID…`: block until jobs have finished; the exit code says how."""

from __future__ import annotations

import argparse
import time

from queuectl_tui.cli.args import duration
from queuectl_tui.cli.opening import WORKER_LOOK_S, open_queue, say_if_no_worker
from queuectl_tui.cli.output import reply, say
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import EXIT_JOB_FAILED, EXIT_OK, EXIT_TIMEOUT
from queuectl_tui.safe_text import printable


def add_parser(build: Builder) -> None:
    p = build.add("wait", "block until jobs have finished; exit 0 if all completed, "
                          "6 if any ended dead or cancelled, 7 on timeout", build.as_json)
    p.add_argument("job_ids", nargs="+", metavar="ID")
    p.add_argument("--timeout", type=duration, metavar="DURATION",
                   help="give up after this long (exit 7); default: wait for ever")


def run(args: argparse.Namespace) -> int:
    """Poll a cheap query four times a second: a finish is seen within 0.25 s
    and a wait costs next to no CPU, however long it lasts."""
    queue = open_queue(args, create=False)
    ids = list(dict.fromkeys(args.job_ids))
    held = [job_id for job_id in ids  # an unknown id is an error now, not a wait for ever
            if queue.get(job_id).state == "held"]
    if held:
        say(f"queuectl: {', '.join(held[:5])}{' …' if len(held) > 5 else ''} "
            f"{'is' if len(held) == 1 else 'are'} held: nothing runs until "
            f"`queuectl release {held[0]}{' …' if len(held) > 1 else ''}`")
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    done: dict = {}
    said, next_look = False, 0.0  # whether a pool runs: looked at every few seconds
    while True:
        for job_id, job in queue.finished([i for i in ids if i not in done]).items():
            done[job_id] = job
            if not args.json:
                print(printable(f"{job_id} {job.state}")
                      + (f": {printable(job.last_error)}"
                         if job.last_error and job.state != "completed" else ""), flush=True)
        if len(done) == len(ids) or (deadline is not None and time.monotonic() >= deadline):
            break
        if not said and time.monotonic() >= next_look:
            said, next_look = say_if_no_worker(queue), time.monotonic() + WORKER_LOOK_S
        time.sleep(0.25)
    waiting = [i for i in ids if i not in done]
    reply_waited(args, done, waiting)
    if waiting:
        return EXIT_TIMEOUT
    return EXIT_OK if all(j.state == "completed" for j in done.values()) else EXIT_JOB_FAILED


def reply_waited(args: argparse.Namespace, done: dict, waiting: list[str]) -> None:
    """With --json the whole outcome; for people (who saw each finish as it came)
    only the jobs still unfinished at the timeout, on stderr."""
    reply(args, {"finished": [{"id": j.id, "state": j.state, "exit_code": j.exit_code,
                               "last_error": j.last_error} for j in done.values()],
                 "still_waiting": waiting},
          lambda: say(f"queuectl: timed out after {args.timeout:g} s; still unfinished: "
                      + ", ".join(waiting)) if waiting else None)
