"""`queuectl status`: job counts per state, per queue, and the live workers.

The command most often typed and scripted: it imports only what it reads
(tests/test_startup.py keeps it so).
"""

from __future__ import annotations

import argparse
from typing import Any

from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import print_workers, reply
from queuectl_tui.cli.parser import Builder
from queuectl_tui.engine import redact
from queuectl_tui.safe_text import printable


def add_parser(build: Builder) -> None:
    p = build.add("status", "job counts per state and live workers", build.as_json)
    p.add_argument("--queue", metavar="NAME", help="only this queue's jobs")


def run(args: argparse.Namespace) -> int:
    queue = open_queue(args, create=False)
    counts = queue.counts(args.queue)
    per_queue = ([queue.queue_get(args.queue)] if args.queue is not None
                 else queue.queue_list(recent=False, counts=counts))
    workers = queue.workers()  # live and gone; stopped ones are in `worker list --all`
    active = sum(w["state"] in ("idle", "busy", "stopping") for w in workers)
    stranded = queue.stranded() if counts.get("processing") else []
    paused = queue.paused_count(args.queue) if counts.get("processing") else 0
    if args.queue is not None:
        stranded = [s for s in stranded if s["id"] in
                    {j.id for j in queue.jobs(state="processing", queue=args.queue)}]
    report = {"counts": counts, "total": sum(counts.values()), "paused": paused,
              "active_workers": active,
              "workers": workers, "hidden_gone_workers": queue.hidden_gone_workers(),
              "queues": per_queue, "stranded": stranded,
              "database": redact(queue.opened.target)}
    reply(args, report, lambda: print_status(args.queue, report))
    return 0


def print_status(only_queue: str | None, report: dict[str, Any]) -> None:
    """The report for people: counts, the queues when there is more to say than
    one default queue, the workers, and jobs whose worker is gone."""
    counts, workers, active = report["counts"], report["workers"], report["active_workers"]
    print(("" if only_queue is None else f"queue {only_queue}: ")
          + "  ".join(f"{state} {n}" + (f" ({report['paused']} paused)"
                                          if state == "processing" and report["paused"] else "")
                      for state, n in counts.items())
          + f"  (total {report['total']})")
    if only_queue is None and (len(report["queues"]) > 1 or
                               any(q["paused"] or q["limit"] or q.get("rate")
                                   or q.get("per_key_limit") for q in report["queues"])):
        for q in report["queues"]:
            print(f"  {q['name']:<16} " + "  ".join(
                f"{st} {q['counts'].get(st, 0)}" for st in ("pending", "processing", "failed",
                                                           "dead"))
                  + (f"  limit {q['limit']}" if q["limit"] else "")
                  + (f"  per key {q['per_key_limit']}" if q.get("per_key_limit") else "")
                  + (f"  rate {q['rate']['used']} of {q['rate']['rate']}" if q.get("rate")
                     else "")
                  + ("  PAUSED" if q["paused"] else ""))
    gone = len(workers) - active
    print(("no workers active" if active == 0 else
           f"{active} worker{'s' if active != 1 else ''} active")
          + (f", {gone} gone recently" if gone else "")
          + ("" if active else "; start some with: queuectl worker start --count 2"))
    if report["stranded"]:
        print(stranded_line(report["stranded"]))
    if workers:
        print_workers(workers)
    hidden = report["hidden_gone_workers"]
    if hidden:
        print(f"({hidden} worker(s) gone longer ago are not shown: queuectl worker list --all)")


def stranded_line(stranded: list[dict]) -> str:
    """One line for jobs left `processing` by a worker that is gone."""
    n = len(stranded)
    ids = ", ".join(s["id"] for s in stranded[:5]) + (", …" if n > 5 else "")
    when = stranded[0]["note"].partition(": ")[2]
    return (f"{n} job{'s' if n != 1 else ''} processing with {'its' if n == 1 else 'their'} "
            f"worker gone ({printable(ids)}): {when}")
