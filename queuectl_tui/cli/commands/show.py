"""`queuectl show ID`: everything about one job, its output tails and its runs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import clip, progress_line, reply, table
from queuectl_tui.cli.parser import Builder
from queuectl_tui.engine import format_size
from queuectl_tui.safe_text import printable

# shown below the fields, or in another's line (`paused` says the pause's)
HIDDEN = ("stdout_tail", "stderr_tail", "attempts_log", "worker_gone", "actions",
          "pause_requested", "paused_at", "paused_for")
RESULT_SHOWN = 200  # characters of a result `show` prints


def add_parser(build: Builder) -> None:
    p = build.add("show", "everything about one job", build.as_json)
    p.add_argument("job_id", metavar="ID")


def run(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import job_dict  # loads the engine: after parsing
    queue = open_queue(args, create=False)
    row = queue.get(args.job_id)
    job = job_dict(row, with_output=True)  # with the output tails
    job["waiting"] = queue.why_waiting(row)
    job["after"] = queue.job_dict(args.job_id)["after"]
    job["attempts_log"] = queue.attempts(args.job_id)
    job["actions"] = list(reversed(queue.audit(job_id=args.job_id, limit=100)))
    gone = queue.stranded([job["id"]]) if job["state"] == "processing" else []
    job["worker_gone"] = bool(gone)
    reply(args, job, lambda: print_job(job, gone))
    return 0


def print_job(job: dict[str, Any], gone: list[dict[str, Any]]) -> None:
    """One field a line, then the output tails and the table of runs."""
    for key, value in job.items():
        if key == "after":
            value = ", ".join(f"{d['id']} ({d['state'] or 'gone'})" for d in value) or None
        elif key == "needs" and value:
            value = describe_needs(value)
        elif key == "devices" and value:
            value = ",".join(value)
        elif key == "paused":
            value = describe_pause(job)
        elif key == "progress" and value:
            value = progress_line(value)
        elif key == "result" and value is not None:  # `queuectl result ID` prints it whole
            value = clip(json.dumps(value, ensure_ascii=False), RESULT_SHOWN)
        if key not in HIDDEN:
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
                format_size(a["peak_mem"]), "-" if a["cpu_s"] is None else f"{a['cpu_s']:.2f}s",
                a["worker_id"] or "-", a["error"] or "")
               for a in job["attempts_log"]],
              ["RUN", "STARTED (UTC)", "TOOK", "EXIT", "ENDED BY", "PEAK MEM", "CPU", "WORKER",
               "ERROR"])
        limited = [a for a in job["attempts_log"] if a["mem_limit_by"]]
        if limited:
            print(f"memory limit enforced by {limited[-1]['mem_limit_by']}")
    if job["actions"]:
        print("--- operator actions ---")
        table([(a["at"][:19].replace("T", " "), a["who"], a["via"], a["action"])
               for a in job["actions"]], ["AT (UTC)", "WHO", "VIA", "ACTION"])


def describe_pause(job: dict[str, Any]) -> str:
    """"yes, since 2026-…Z (12.5 s paused before)", "asked: its worker stops it
    within a second", or "no" (with the time a finished run spent paused)."""
    before = job["paused_for"]
    earlier = f" ({before:.1f} s paused before)" if before else ""
    if job["paused"]:
        return f"yes, since {job['paused_at']}{earlier}"
    if job["pause_requested"]:
        return "asked: its worker stops its processes within a second"
    return f"no ({before:.1f} s paused in this run)" if before else "no"


def describe_needs(needs: dict[str, Any]) -> str:
    """{'cpus': 2, 'mem': 1073741824, 'gpus': 1} -> '2 cpus, 1G memory, 1 GPU'."""
    parts = []
    if needs["cpus"]:
        parts.append(f"{needs['cpus']:g} cpu" + ("s" if needs["cpus"] != 1 else ""))
    if needs["mem"]:
        parts.append(f"{format_size(needs['mem'])} memory")
    if needs["gpus"]:
        parts.append(f"{needs['gpus']} GPU" + ("s" if needs["gpus"] != 1 else ""))
    return ", ".join(parts)
