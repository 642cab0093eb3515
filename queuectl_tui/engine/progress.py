"""What a running job says about how far it is: done of a total (or a
percentage), a short message, and the pattern its output lines are read with;
and how that shows. Writing it is engine/reports.py's.

Progress of an earlier run never shows for a new one: it is shown only when it
was reported at or after the run's start (`progress_at >= started_at`), so the
claim resets nothing and costs nothing more. After a run ends, its last
progress stays visible until the next run starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from queuectl_tui.clock import iso
from queuectl_tui.engine.states import State
from queuectl_tui.errors import UsageError

MAX_MESSAGE = 200  # characters of a progress message
MAX_PATTERN = 200  # characters of a --progress-regex
MAX_LINE = 512  # characters of an output line a pattern is tried on
_NUMBER = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,6})?")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Progress:
    """Done of total; with `total` None, `done` is a percentage (0-100)."""

    done: float
    total: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / 100.0 if self.total is None else self.done / self.total


def _number(text: str, what: str) -> float:
    if not _NUMBER.fullmatch(text):
        raise UsageError(f"invalid progress {what} {text[:40]!r}: a number in plain digits, "
                         "e.g. 40, 12.5 or 120/500")
    return float(text)


def parse(text: str) -> Progress:
    """'40' or '40%' (a percentage), '120/500' (done of total)."""
    body = text.strip()
    if "/" in body:
        done_text, _, total_text = body.partition("/")
        done, total = _number(done_text.strip(), "done"), _number(total_text.strip(), "total")
        if total <= 0:
            raise UsageError(f"invalid progress {text[:40]!r}: the total must be above 0")
        if done > total:
            raise UsageError(f"invalid progress {text[:40]!r}: done is more than the total")
        return Progress(done, total)
    value = _number(body.removesuffix("%").strip(), "percentage")
    if value > 100:
        raise UsageError(f"invalid progress {text[:40]!r}: a percentage is 0 to 100 "
                         "(or give DONE/TOTAL, e.g. 120/500)")
    return Progress(value)


def check_message(text: str) -> str | None:
    """A short status line; '' clears it. Control characters are refused: it is
    shown on one line in `list`, `show` and the console."""
    body = text.strip()
    if len(body) > MAX_MESSAGE:
        raise UsageError(f"progress message is {len(body)} characters; the limit is "
                         f"{MAX_MESSAGE}")
    if _CONTROL.search(body):
        raise UsageError("progress message must be one line without control characters")
    return body or None


def check_pattern(text: Any) -> str:
    """A --progress-regex: compiles, at most MAX_PATTERN characters, and has one
    group (a percentage) or two (done, total)."""
    if not isinstance(text, str) or not text:
        raise UsageError("progress_regex must be a regular expression (text)")
    if len(text) > MAX_PATTERN:
        raise UsageError(f"progress_regex is {len(text)} characters; the limit is "
                         f"{MAX_PATTERN}")
    try:
        groups = re.compile(text).groups
    except re.error as exc:
        raise UsageError(f"progress_regex does not compile: {exc}") from None
    if groups not in (1, 2):
        raise UsageError(f"progress_regex has {groups} groups: give 1 (a percentage, e.g. "
                         r"'(\d+)%') or 2 (done and total, e.g. '(\d+)/(\d+)')")
    return text


def compiled(text: str | None) -> re.Pattern | None:
    """The pattern a run's output is read with (None: none, or one that no
    longer compiles: written into the database by hand)."""
    if not text:
        return None
    try:
        pattern = re.compile(text)
    except re.error:
        return None
    return pattern if pattern.groups in (1, 2) else None


def from_line(pattern: re.Pattern, line: str) -> Progress | None:
    """The progress a line of output says, if the pattern matches it with
    numbers that make sense (a match that does not is ignored)."""
    found = pattern.search(line[:MAX_LINE])
    if found is None:
        return None
    try:
        return parse("/".join(g or "" for g in found.groups()))
    except UsageError:
        return None


# ---------------------------------------------------------------- shown

@dataclass(frozen=True)
class Shown:
    """A run's progress as the faces show it. `eta_s`: seconds left as the last
    report saw it (elapsed since the run started * (1 - f) / f), while the job
    runs and has moved at all; `eta_at` the time that comes to."""

    done: float
    total: float | None
    fraction: float
    message: str | None
    at: float
    eta_s: float | None

    @property
    def percent(self) -> float:
        return round(self.fraction * 100, 1)

    @property
    def eta_at(self) -> float | None:
        return None if self.eta_s is None else self.at + self.eta_s

    def left_at(self, now: float) -> float | None:
        """Seconds left from `now`, by the last report's estimate."""
        return None if self.eta_s is None else max(0.0, self.at + self.eta_s - now)

    def public(self) -> dict[str, Any]:
        """The `progress` object of `--json`."""
        return {"done": _plain(self.done), "total": _plain(self.total),
                "percent": _plain(self.percent), "message": self.message, "at": iso(self.at),
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
                "eta_at": iso(self.eta_at)}


def _plain(value: float | None) -> float | int | None:
    return int(value) if value is not None and float(value).is_integer() else value


def shown(done: float | None, total: float | None, message: str | None, at: float | None,
          started_at: float | None, state: str) -> Shown | None:
    """The progress of the job's current (or last) run, or None: never reported,
    or reported by an earlier run."""
    if done is None or at is None or started_at is None or at < started_at:
        return None
    fraction = min(1.0, max(0.0, done / 100.0 if total is None else done / total))
    eta = None
    if state == State.PROCESSING and fraction > 0:
        eta = max(0.0, at - started_at) * (1 - fraction) / fraction
    return Shown(done, total, fraction, message, at, eta)


def shown_of(job: Any) -> Shown | None:
    """`shown` for a job row (a model, a named tuple or a dict of its columns)."""
    get = job.get if isinstance(job, dict) else lambda name: getattr(job, name)
    return shown(get("progress_done"), get("progress_total"), get("progress_message"),
                 get("progress_at"), get("started_at"), get("state"))
