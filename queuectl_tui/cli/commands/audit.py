"""`queuectl audit`: who did what, newest first (JSON Lines with --json)."""

from __future__ import annotations

import argparse
import json
import time

from queuectl_tui.cli.args import positive_int
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import emit_json_lines, reply, table
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import UsageError


def add_parser(build: Builder) -> None:
    p = build.add("audit", "operator actions: who did what, when, to which jobs "
                  "(JSON Lines with --json)", build.as_json)
    p.add_argument("--since", metavar="WHEN",
                   help="a duration ago (90m, 2d) or an ISO 8601 time")
    p.add_argument("--job", metavar="ID", help="only actions that named this job")
    p.add_argument("--limit", type=positive_int, metavar="N", default=None)


def run(args: argparse.Namespace) -> int:
    since = None if args.since is None else _since(args.since)
    queue = open_queue(args, create=False)
    rows = queue.audit(since=since, limit=args.limit, job_id=args.job)
    reply(args, rows, lambda: table(
        ((r["at"][:19].replace("T", " "), r["who"], r["via"], r["action"],
          _what(r), _detail(r)) for r in rows),
        ["AT", "WHO", "VIA", "ACTION", "ON", "DETAIL"]), emit=emit_json_lines)
    return 0


def _since(text: str) -> float:
    """A duration ago, or a moment: `--since 2h`, `--since 2026-12-01T09:00Z`."""
    from queuectl_tui.engine import check_time, parse_duration
    try:
        return time.time() - parse_duration(text)
    except UsageError:
        pass
    try:
        return check_time("--since", text)
    except UsageError:
        raise UsageError(f"--since takes a duration (90m, 2d) or an ISO 8601 time, "
                         f"got {text!r}") from None


def _what(row: dict) -> str:
    if row["jobs"]:
        named = " ".join(row["job_ids"][:3])
        more = row["jobs"] - min(3, len(row["job_ids"]))
        return named + (f" (+{more} more)" if more > 0 else "")
    return row["target"] or "-"


def _detail(row: dict) -> str:
    detail = "" if row["detail"] is None else json.dumps(row["detail"])[:80]
    if row["jobs"] and row["target"]:
        return f"{row['target']} {detail}".strip()
    return detail
