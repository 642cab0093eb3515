"""Config keys: their defaults, how a value is validated, and where it is stored.

Values live in the `setting` table as JSON, so every process sharing the
database sees the same config. `max_retries` and `max-retries` name the same key.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from queuectl_tui.engine.storage.models import Setting
from queuectl_tui.errors import UsageError


INTEGER = re.compile(r"[+-]?[0-9]{1,15}")
DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,15})?|\.[0-9]{1,15})(?:[eE][+-]?[0-9]{1,3})?")


def _number(low: float, high: float, *, integer: bool = False) -> Callable[[Any], Any]:
    kind = "a whole number" if integer else "a number"

    def parse(raw: Any) -> Any:
        if isinstance(raw, bool):
            raise ValueError(f"must be {kind}")
        if isinstance(raw, str):
            text = raw.strip()
            # ASCII digits only: Python's int()/float() also take "1_000" and
            # other scripts' digits, which the docs do not promise.
            if not (INTEGER if integer else DECIMAL).fullmatch(text):
                raise ValueError(f"must be {kind} in plain digits, got {raw[:40]!r}")
            value: Any = int(text) if integer else float(text)
        elif isinstance(raw, (int, float)):
            value = raw
        else:
            raise ValueError(f"must be {kind}")
        if integer and (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"must be {kind}, got {raw!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {raw!r}")
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {value:g}")
        if integer:
            return int(value)
        return int(value) if float(value).is_integer() else float(value)

    return parse


def _keep_time(raw: Any) -> float:
    """How long finished jobs are kept: a duration ('7d', '12h', '90') in
    seconds; 0, 'forever' or 'never' keeps them for ever."""
    from queuectl_tui.engine.durations import parse_duration
    if isinstance(raw, str) and raw.strip().lower() in ("forever", "never", "keep"):
        return 0
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise ValueError("must be a duration such as 7d, 12h, 90 (seconds), or forever")
    try:
        seconds = parse_duration(raw)
    except UsageError as exc:
        raise ValueError(str(exc).replace("invalid duration", "not a duration")) from None
    return int(seconds) if seconds.is_integer() else seconds


def _command(raw: Any) -> str:
    """A shell command ('' or 'none' for no hook)."""
    text = str(raw).strip()
    if text.lower() in ("none", "off"):
        return ""
    if "\x00" in text or len(text.encode("utf-8", "surrogatepass")) > 4096:
        raise ValueError("must be a shell command of at most 4096 bytes without NUL")
    return text


def _codes(raw: Any) -> str:
    """Exit codes and `timeout`, e.g. '126,127' ('' or 'none': retry everything)."""
    from queuectl_tui.engine.jobspec import check_no_retry_on
    text = str(raw).strip()
    if text.lower() in ("none", ""):
        return ""
    try:
        return check_no_retry_on(text)
    except UsageError as exc:
        raise ValueError(str(exc).replace("no_retry_on: ", "")) from None


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = str(raw).strip().lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {raw!r}")
        return text

    return parse


@dataclass(frozen=True)
class Key:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str


KEYS: dict[str, Key] = {k.name: k for k in (
    Key("max-retries", 3, _number(0, 1000, integer=True),
        "retries after the first run for new jobs (a job runs at most 1 + this)"),
    Key("backoff-base", 2, _number(1, 3600),
        "a failed job waits base ** attempts seconds before its retry"),
    Key("backoff-max", 3600, _number(0, 30 * 86400),
        "cap on one backoff delay, in seconds"),
    Key("job-timeout", 0, _number(0, 30 * 86400),
        "default timeout in seconds for new jobs; 0 means none"),
    Key("poll-interval", 1.0, _number(0.01, 60),
        "longest an idle worker waits before looking for due jobs again, in seconds"),
    Key("lease-seconds", 10, _number(2, 3600),
        "a worker silent this long is gone and its job is rescued"),
    Key("durability", "normal", _choice("full", "normal"),
        "normal: workers skip the fsync (a power cut may re-run a job); full: never"),
    Key("no-retry-on", "", _codes,
        "exit codes (and 'timeout') that go straight to the DLQ, e.g. 126,127, for new jobs"),
    Key("max-snoozes", 10, _number(0, 1000, integer=True),
        "snoozes a job may take in one run series; the one past it is a failure"),
    Key("snooze-delay", 60, _number(0, 30 * 86400),
        "seconds a job that exits 75 (snooze) waits before it runs again, unless it said"),
    Key("finish-hook", "", _command,
        "shell command run after each job completes, dies or is cancelled ('' = none)"),
    Key("finish-hook-timeout", 30, _number(0.1, 3600),
        "seconds a finish hook may run before it is killed"),
    Key("finish-hook-concurrency", 8, _number(1, 64, integer=True),
        "finish hooks a pool runs at once"),
    Key("retention-completed", 7 * 86400, _keep_time,
        "seconds a completed job is kept before it is pruned (7d, 12h, ...); 0 = forever"),
    Key("retention-dead", 30 * 86400, _keep_time,
        "seconds a dead job (the DLQ) is kept before it is pruned; 0 = forever"),
    Key("retention-cancelled", 30 * 86400, _keep_time,
        "seconds a cancelled job is kept before it is pruned; 0 = forever"),
    Key("retention-audit", 90 * 86400, _keep_time,
        "seconds an operator action is kept in the audit trail; 0 = forever"),
    Key("result-max-bytes", 65536, _number(2, 1 << 20, integer=True),
        "the largest result a job may store (`queuectl result set`), in bytes; at most 1 MiB"),
)}


def canonical(key: str) -> str:
    name = key.strip().lower().replace("_", "-")
    if name not in KEYS:
        raise UsageError(f"unknown config key {key!r}; known keys: {', '.join(KEYS)}")
    return name


def validate(key: str, raw: Any) -> Any:
    name = canonical(key)
    try:
        return KEYS[name].parse(raw)
    except ValueError as exc:
        raise UsageError(f"invalid value for {name}: {exc}") from None


def get(key: str) -> Any:
    name = canonical(key)
    row = Setting.get_or_none(Setting.key == name)
    return KEYS[name].default if row is None else json.loads(row.value)


def defaults() -> dict[str, Any]:
    """Every key's default: what a database that does not exist yet would say."""
    return {name: key.default for name, key in KEYS.items()}


def get_all() -> dict[str, Any]:
    stored = {row.key: json.loads(row.value) for row in Setting.select()}
    return {name: stored.get(name, default) for name, default in defaults().items()}


def set_value(key: str, raw: Any) -> Any:
    """Validate and store; returns the value as stored."""
    name = canonical(key)
    value = validate(name, raw)
    text = json.dumps(value)
    Setting.insert(key=name, value=text).on_conflict(
        conflict_target=[Setting.key], update={Setting.value: text}).execute()
    return value
