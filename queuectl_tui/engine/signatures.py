"""A dead job's failure signature, and the short id its DLQ group goes by.

Five hundred dead jobs are rarely five hundred problems: the same script fails
the same way on different files, hosts and ids. A signature keeps what names
the problem and drops what names the instance: how the run ended (`exit 2`,
`SIGKILL`, `timeout`, `oom`, `rescued`) and the last line of its error output
with numbers, hex, UUIDs and other ids, paths, URLs, addresses, times and
quoted values replaced by placeholders (`<n>`, `<hex>`, `<id>`, `<path>`,
`<url>`, `<ip>`, `<time>`, `<q>`). Jobs with one signature are one group,
retried or deleted with one decision.

Pure text work, no SQL: computed once, when a run's job goes dead (in the
transaction of that move), never on the success path. The rules are
deterministic, so a signature computed today equals one computed for the same
failure tomorrow, and a group id typed from `dlq groups` keeps meaning the same
group.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal

from queuectl_tui.engine import attempts

MAX_LEN = 255  # the column's size (job.failure_sig)
NONE = ""  # no signature (a job dead before signatures existed and not yet signed)
LINE_CHARS = 2000  # a longer last line is cut before the patterns read it
# How a run ended, when that says more than its exit: the signature's first word.
ENDINGS = (attempts.TIMEOUT, attempts.OOM, attempts.CANCELLED, attempts.STOPPED,
           attempts.RESCUED, attempts.LOST)
# A JSON log line's message, by the names structured loggers give it.
JSON_MESSAGE_KEYS = ("msg", "message", "error", "err", "error_message", "reason")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+"
_CLOCK = r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s?(?:Z|UTC|[+-]\d{2}:?\d{2}))?"
_ALNUM_BEFORE, _ALNUM_AFTER = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"

_DIGITS = "0123456789"
# (pattern, placeholder, characters one of which the pattern needs), applied in
# this order: what contains digits of its own (a UUID, a time, an address, a
# path) goes before the plain numbers. A line with none of a rule's characters
# skips it: most lines meet a third of the rules.
_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern), placeholder, needs) for pattern, placeholder, needs in (
        # UUIDs, before anything reads their digits as a number or a date
        (_ALNUM_BEFORE + r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
         + _ALNUM_AFTER, "<id>", "-"),
        # dates with an optional time (ISO 8601, 2024/01/31), syslog dates, clocks
        (r"(?<!\d)\d{4}[-/]\d{2}[-/]\d{2}(?:[T ]" + _CLOCK + r")?(?!\d)", "<time>", "-/"),
        (r"\b(?:" + _DAY + r")?" + _MONTH + r"\s+\d{1,2}(?:,?\s+\d{4})?(?:\s+" + _CLOCK
         + r")?(?!\d)", "<time>", _DIGITS),
        (r"(?<![\d:])" + _CLOCK + r"(?![\d:])", "<time>", ":"),
        # URLs, e-mail addresses, IP addresses with an optional port
        (r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+", "<url>", ":"),
        (r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", "<email>", "@"),
        (r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\d.])", "<ip>", "."),
        (r"(?<![\w:.])(?=[0-9a-fA-F:]*::|(?:[0-9a-fA-F]{1,4}:){3})[0-9a-fA-F:]{2,39}"
         r"(?![\w:.])", "<ip>", ":"),
        # quoted values: 'x', "x", `x`, ‘x’, “x” (not the apostrophe in can't)
        (r"(?<![\w])[bruf]?'[^'\n]{0,300}'(?![\w])", "<q>", "'"),
        (r"(?<![\w])[bruf]?\"[^\"\n]{0,300}\"(?![\w])", "<q>", '"'),
        (r"(?<![\w])`[^`\n]{0,300}`(?![\w])", "<q>", "`"),
        (r"‘[^’\n]{0,300}’|“[^”\n]{0,300}”", "<q>", "‘“"),
        # paths: absolute, home, ./relative, C:\windows, a/b/c and dir/file.ext
        (r"(?<![\w./~-])(?:~|\.{1,2})?/[^\s'\"`:,;()\[\]{}<>]+", "<path>", "/"),
        (r"\b[A-Za-z]:\\[^\s'\"`:,;()<>]+", "<path>", "\\"),
        (r"(?<![\w./-])[\w.-]+(?:/[\w.-]+){2,}", "<path>", "/"),
        (r"(?<![\w./-])[\w.-]+/[\w-][\w.-]*\.[A-Za-z][A-Za-z0-9]{0,5}(?![\w/])", "<path>",
         "/"),
        # hex: 0x… and long runs of hex digits (hashes, object ids)
        (_ALNUM_BEFORE + r"0[xX][0-9a-fA-F]+" + _ALNUM_AFTER, "<hex>", "xX"),
        (_ALNUM_BEFORE + r"(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}"
         + _ALNUM_AFTER, "<hex>", _DIGITS),
    ))
# A number with a short unit (500ms, 1.5s, 10MB, 2nd) keeps the unit; any other
# word of letters and digits mixed (job42, a1b2c3, i-0ab12) is an id.
_UNIT = re.compile(_ALNUM_BEFORE + r"\d+(?:[.,]\d+)*([A-Za-z]{1,3})" + _ALNUM_AFTER)
_MIXED = re.compile(_ALNUM_BEFORE + r"(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]+"
                    + _ALNUM_AFTER)
_NUMBER = re.compile(_ALNUM_BEFORE + r"\d+(?:[.,]\d+)*" + _ALNUM_AFTER)
# A list of one placeholder (ids 1, 2, 3): one placeholder, however long the list.
_RUN = re.compile(r"(<[a-z]+>)(?:(?:\s*,\s*|\s+)\1)+")
_SPACE = re.compile(r"\s+")
_WORKER = re.compile(r"\bworker \S+")


def signature(exit_code: int | None, ended: str | None, stderr_tail: str | None,
              error: str | None) -> str:
    """How a failed run ended, made generic: at most MAX_LEN characters.

    `ended` is the run's ending (engine/attempts.py REASONS; None when the
    caller does not know it). A run that exited (or was killed by a signal)
    is described by its last non-empty line of stderr; one stopped by a
    timeout, its memory limit or a rescue, by the error the engine gave it
    (what it printed last is then not why it failed).
    """
    kind = _kind(exit_code, ended)
    if ended in ENDINGS:
        detail = _first_line(error)
        if ended in (attempts.RESCUED, attempts.LOST):
            detail = _WORKER.sub("worker <id>", detail)
    else:
        detail = last_line(stderr_tail)
        if not detail and error and not error.startswith(("exit code", "killed by")):
            detail = _first_line(error)  # it could not start, or an unknown path
    text = generic(detail)
    found = f"{kind}: {text}" if text else kind
    return found if len(found) <= MAX_LEN else found[:MAX_LEN - 1] + "…"


def group_id(sig: str | None) -> str:
    """The group's short id (8 hex digits), the same wherever it is computed."""
    return hashlib.sha1((sig or NONE).encode("utf-8")).hexdigest()[:8]


def shown(sig: str | None) -> str:
    """A signature as people read it (no signature: said so)."""
    return sig if sig else "(no signature: died before signatures were kept)"


def _kind(exit_code: int | None, ended: str | None) -> str:
    if ended in ENDINGS:
        return str(ended)
    if exit_code is None:
        return "error"  # it never ran: a bad directory, a limit that could not be set
    if exit_code < 0:
        try:
            return signal.Signals(-exit_code).name
        except ValueError:
            return f"signal {-exit_code}"
    return f"exit {exit_code}"


def last_line(text: str | None) -> str:
    """The last line with something on it, as a terminal would have left it."""
    if not text:
        return ""
    for line in reversed(text.splitlines()):
        line = line.rsplit("\r", 1)[-1] if "\r" in line.rstrip("\r") else line
        if line.strip():
            return line.strip()
    return ""


def _first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def generic(line: str) -> str:
    """One line with what varies between instances of a failure made generic."""
    line = _ANSI.sub("", line[:LINE_CHARS])
    line = _CONTROL.sub(" ", line).strip()
    line = _json_message(line)
    for pattern, placeholder, needs in _RULES:
        if any(map(line.__contains__, needs)):
            line = pattern.sub(placeholder, line)
    if any(map(line.__contains__, _DIGITS)):
        line = _UNIT.sub(r"<n>\1", line)
        line = _MIXED.sub("<id>", line)
        line = _NUMBER.sub("<n>", line)
    if "<" in line:
        line = _RUN.sub(r"\1", line)
    return _SPACE.sub(" ", line).strip()


def _json_message(line: str) -> str:
    """A structured log line's message, when the line is a JSON object that has one."""
    if not (line.startswith("{") and line.endswith("}")):
        return line
    try:
        value = json.loads(line)
    except ValueError:
        return line
    if isinstance(value, dict):
        for key in JSON_MESSAGE_KEYS:
            if isinstance(value.get(key), str) and value[key].strip():
                return value[key].strip()
    return line
