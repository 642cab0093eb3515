"""How times, durations and states read on screen: short, relative, coloured."""

from __future__ import annotations

from queuectl_tui.safe_text import printable

import io
import signal
from typing import Any

from rich.console import Console
from rich.text import Text

from queuectl_tui.clock import iso

STATE_STYLE = {
    "pending": "bold #5fafff",
    "scheduled": "#5f87af",
    "processing": "bold #ffd75f",
    "paused": "bold #d7af87",  # a running job whose processes are stopped
    "completed": "#5fd75f",
    "failed": "bold #ff875f",
    "dead": "bold #ff5f5f",
    "cancelled": "#af87ff",
    "blocked": "#87afaf",
    "held": "#d7af87",
    "deleted": "dim",
    "idle": "#5fd75f",
    "busy": "bold #ffd75f",
    "stopping": "#ff875f",
    "gone": "bold #ff5f5f",
    "stopped": "dim",
}


def shown_state(job: dict[str, Any], now: float) -> str:
    """`scheduled` for a pending job that is not due yet, apart from the due ones;
    `paused` for a running job whose processes are stopped (`queuectl pause`)."""
    if job["state"] == "pending" and job["run_at"] > now:
        return "scheduled"
    if job["state"] == "processing" and job.get("paused_at") is not None:
        return "paused"
    return job["state"]


def state_text(state: str | None) -> Text:
    return Text(state or "-", style=STATE_STYLE.get(state or "", ""))


def span(seconds: float | None) -> str:
    """A duration in the two largest units: 850ms, 4.2s, 2m05s, 1h02m, 3d04h."""
    if seconds is None:
        return ""
    s = max(0.0, seconds)
    if s < 1:
        return f"{int(s * 1000)}ms"
    if s < 9.95:
        return f"{s:.1f}s"
    if s < 60:
        return f"{max(10, int(s))}s"  # 9.96 reads "10s", not "10.0s" beside "10s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def ago(ts: float | None, now: float) -> str:
    if ts is None:
        return ""
    return "just now" if now - ts < 1 else f"{span(now - ts)} ago"


def until(ts: float | None, now: float) -> str:
    if ts is None:
        return ""
    return "due" if ts <= now else f"in {span(ts - now)}"


def stamp(ts: float | None, now: float) -> str:
    """ISO time plus how long ago (or until): for the detail pane."""
    if ts is None:
        return "-"
    rel = ago(ts, now) if ts <= now else until(ts, now)
    return f"{(iso(ts) or '')[:19].replace('T', ' ')}  {rel}"


def when(job: dict[str, Any], now: float) -> str:
    """The one time that matters for a job in its state."""
    state = job["state"]
    if state == "pending":
        return until(job["run_at"], now)
    if state == "failed":
        return "retry " + until(job["run_at"], now)
    if state == "processing":
        return "started " + (ago(job["started_at"], now) if now - job["started_at"] >= 1
                             else "now")
    return ago(job["finished_at"] or job["updated_at"], now)


BAR_EIGHTHS = " ▏▎▍▌▋▊▉"
BAR_STYLE = "#ffd75f"


def bar(fraction: float, width: int) -> str:
    """A bar `width` cells wide, filled to `fraction` in eighths of a cell."""
    eighths = int(round(max(0.0, min(1.0, fraction)) * width * 8))
    full, part = divmod(eighths, 8)
    return ("█" * full + (BAR_EIGHTHS[part] if part else "")).ljust(width, "·")


def progress_cell(job: dict[str, Any], now: float, width: int = 5) -> Text | None:
    """A running job's progress for its row: a bar, the percentage and the time
    left by the last report ("███▌· 70% 2m05s"); None when it has reported none."""
    from queuectl_tui.engine import progress_of
    seen = progress_of(job) if job["state"] == "processing" else None
    if seen is None:
        return None
    text = Text(bar(seen.fraction, width), style=BAR_STYLE)
    text.append(f" {seen.percent:3.0f}%")
    left = seen.left_at(now)
    if left is not None:
        text.append(f" {span(left)}", style="dim")
    return text


def progress_text(job: dict[str, Any], now: float, width: int = 20) -> Text | None:
    """The detail pane's progress: the bar and percentage, then done of total,
    the time left and how long ago the job said so."""
    from queuectl_tui.engine import progress_of
    seen = progress_of(job)
    if seen is None:
        return None
    text = Text(bar(seen.fraction, width), style=BAR_STYLE)
    text.append(f" {seen.percent:g}%\n")
    parts = [f"{seen.done:g} of {seen.total:g}"] if seen.total is not None else []
    left = seen.left_at(now) if job["state"] == "processing" else None
    if left is not None:
        parts.append(f"ETA {span(left)}")
    parts.append(ago(seen.at, now))
    text.append(" · ".join(parts), style="dim")
    return text


def duration(job: dict[str, Any], now: float) -> str:
    started, finished = job.get("started_at"), job.get("finished_at")
    if started is None:
        return ""
    if job["state"] == "processing":
        return span(now - started)
    if finished is not None and finished >= started:
        return span(finished - started)
    return ""


def one_line(text: str | None, limit: int = 300) -> str:
    if not text:
        return ""
    first = printable(text.strip().replace("\t", " ")).splitlines()
    line = first[0] if first else ""
    if len(first) > 1:
        line += " …"
    return line[:limit]


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 job', '2 jobs', '1,234 jobs': a count with its noun agreeing."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def exit_text(code: int | None) -> str:
    """An exit code as a person reads it: 0, 3, or the signal's name for a run
    a signal ended (stored as -N, as subprocess reports it): SIGTERM, not -15."""
    if code is None:
        return ""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return str(code)


def tries(job: dict[str, Any]) -> str:
    return f"{job['attempts']}/{job['max_retries'] + 1}"


_WRAPPER = Console(width=200, file=io.StringIO(), color_system=None)  # wraps, never prints


def value_lines(value: Text, room: int) -> list[Text]:
    """A value's lines in `room` cells: its own lines (a multi-line command),
    each wrapped, without the trailing space a wrap leaves (one cell too many
    made the widget wrap the line again, under the label)."""
    lines: list[Text] = []
    for part in value.split("\n", allow_blank=True) if "\n" in value.plain else [value]:
        wrapped = part.wrap(_WRAPPER, room, overflow="fold") if part.cell_len > room \
            else [part]
        for line in wrapped:
            line.rstrip()
            lines.append(line)
    return lines or [Text()]


def two_columns(rows: list[tuple[str | Text, Text | str]], *, width: int,
                label_style: str = "bold #87afd7", gap: int = 1) -> Text:
    """Labels and values as one Text, each value wrapped under itself.

    What a Rich grid shows, drawn about ten times cheaper: the detail pane
    repaints every second while a job runs, and a grid measures every column
    each time. A row whose label is a Text keeps that Text's style."""
    label_w = max((len(str(label)) for label, _ in rows), default=0) + gap
    room = max(8, width - label_w)
    out = Text()
    for label, value in rows:
        value = value if isinstance(value, Text) else Text(value)
        for i, line in enumerate(value_lines(value, room)):
            if i == 0 and isinstance(label, Text):
                out.append_text(label)
                out.append(" " * max(0, label_w - len(label.plain)))
            else:
                out.append((str(label) if i == 0 else "").ljust(label_w), style=label_style)
            out.append_text(line)
            out.append("\n")
    out.rstrip()
    return out


def needs_text(cpus: float | None, mem: int | None, gpus: int | None) -> str:
    """What a job needs of its pool, as `queuectl show` says it:
    "2 cpus, 16G memory, 1 GPU" ("" when it states nothing)."""
    from queuectl_tui.engine import format_size
    parts = []
    if cpus:
        parts.append(f"{cpus:g} cpu" + ("" if cpus == 1 else "s"))
    if mem:
        parts.append(f"{format_size(mem)} memory")
    if gpus:
        parts.append(f"{gpus} GPU" + ("" if gpus == 1 else "s"))
    return ", ".join(parts)
