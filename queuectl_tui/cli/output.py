"""Printing for the headless commands: plain tables for people, strict JSON for programs.

With `--json`, stdout carries one JSON document (or JSON lines where a command
says so) and nothing else; messages for people go to stderr. Every command ends
with `reply`, which makes that choice in one place.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Iterable, Sequence, TextIO

from queuectl_tui.safe_text import printable


def reply(args: argparse.Namespace, value: Any, text: Any,
          emit: Callable[[Any], Any] | None = None) -> None:
    """The end of every command: `value` as JSON with --json (through `emit`,
    `emit_json` unless a command streams an array or lines), else `text` for
    people: printed, or called when it is a function that prints."""
    if getattr(args, "json", False):
        (emit or emit_json)(value)
    elif callable(text):
        text()
    else:
        print(text)


def emit_json(value: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(value, ensure_ascii=False) + "\n")


def emit_json_array(items: Iterable[Any], out: TextIO | None = None) -> int:
    """Stream a JSON array item by item, so a million jobs never sit in memory at once."""
    out = out or sys.stdout
    count = 0
    out.write("[")
    for item in items:
        out.write(("\n" if count == 0 else ",\n") + json.dumps(item, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def emit_json_lines(items: Iterable[Any], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    count = 0
    for item in items:
        out.write(json.dumps(item, ensure_ascii=False) + "\n")
        count += 1
    return count


def clip(text: Any, width: int) -> str:
    value = "" if text is None else printable(str(text).replace("\r", " "), keep_newlines=False)
    return value if len(value) <= width else value[: max(0, width - 1)] + "…"


SIZING_ROWS = 1000  # column widths come from the first rows; the rest stream through


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str],
          widths: Sequence[int] | None = None, out: TextIO | None = None) -> int:
    """A plain aligned table; the last column is free-width. Returns the row count.

    Columns are sized on the first 1,000 rows and later rows are clipped to fit,
    so a million-row listing streams in constant memory.
    """
    out = out or sys.stdout
    limit = [widths[i] if widths and i < len(widths) else 10_000 for i in range(len(headers))]
    rows = iter(rows)
    head = [[clip(c, limit[i]) for i, c in enumerate(r)] for _, r in zip(range(SIZING_ROWS), rows)]
    cols = [max([len(h)] + [len(r[i]) for r in head]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in cols[:-1]) + ("  {}" if len(cols) > 1 else "{}")
    out.write(fmt.format(*headers).rstrip() + "\n")
    count = 0
    for r in head:
        out.write(fmt.format(*r).rstrip() + "\n")
        count += 1
    for r in rows:
        out.write(fmt.format(*[clip(c, cols[i] if i < len(cols) - 1 else limit[i])
                               for i, c in enumerate(r)]).rstrip() + "\n")
        count += 1
    return count


def say(message: str) -> None:
    """A line for people, on stderr, so stdout stays clean for data."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def has_terminal() -> bool:
    """Whether the console can draw and read keys: stdin and stdout both a tty."""
    try:
        return os.isatty(sys.stdin.fileno()) and os.isatty(sys.stdout.fileno())
    except (AttributeError, ValueError, OSError):  # closed or replaced streams
        return False


def progress_cell(progress: dict[str, Any] | None) -> str:
    """A job's progress in a table: '40%', '120/500'; '-' when it has none."""
    if not progress:
        return "-"
    if progress["total"] is None:
        return f"{progress['percent']:g}%"
    return f"{progress['done']:g}/{progress['total']:g}"


def progress_line(progress: dict[str, Any]) -> str:
    """'24% (120/500), ETA 2m05s: copying' for `show`."""
    text = f"{progress['percent']:g}%"
    if progress["total"] is not None:
        text += f" ({progress['done']:g}/{progress['total']:g})"
    if progress["eta_s"] is not None:
        text += f", ETA {seconds_text(progress['eta_s'])}"
    return text + (f": {progress['message']}" if progress["message"] else "")


def seconds_text(seconds: float) -> str:
    """45s, 2m05s, 3h10m: a duration in its two largest units."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def print_workers(workers: list[dict]) -> None:
    """The workers table of `status` and `worker list`."""
    table([(w["id"], w["host"], w["pid"], w["state"], w["job_id"] or "-",
            w["jobs_done"], w["jobs_failed"], f"{w['heartbeat_age']:.1f}s")
           for w in workers],
          ["WORKER", "HOST", "PID", "STATE", "JOB", "DONE", "FAILED", "HEARTBEAT"])
