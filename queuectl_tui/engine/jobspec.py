"""Validation of what a caller asks to enqueue, before anything is written.

A spec is checked whole; the first problem is reported in words that name the
field, and nothing is stored. Ids are restricted to a safe alphabet so they can
be typed, used in file names and never need quoting.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from queuectl_tui.clock import parse_iso
from queuectl_tui.errors import UsageError

FIELDS = ("id", "command", "max_retries", "priority", "run_at", "delay", "timeout")
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
MAX_COMMAND_BYTES = 131071  # Linux refuses a longer single argument to exec (MAX_ARG_STRLEN)
PRIORITY_RANGE = (-1_000_000, 1_000_000)
MAX_SECONDS = 10 * 365 * 86400


@dataclass(frozen=True)
class JobSpec:
    """A validated request; None means 'use the config default'."""

    command: str
    id: str | None = None
    max_retries: int | None = None
    priority: int = 0
    run_at: float | None = None
    delay: float | None = None
    timeout: float | None = None


def check_id(value: Any) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise UsageError(
            f"invalid job id {value!r}: use 1-128 letters, digits or . _ : @ + - "
            "(starting with a letter or digit)")
    return value


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise UsageError(f"{name} must be a whole number, got {json.dumps(value)}")
    if not low <= value <= high:
        raise UsageError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{name} must be a number of seconds, got {json.dumps(value)}")
    if not math.isfinite(value) or value < 0 or value > MAX_SECONDS:
        raise UsageError(f"{name} must be between 0 and {MAX_SECONDS} seconds, got {value}")
    return float(value)


def _time(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise UsageError(f"{name} must be an ISO 8601 time or epoch seconds")
    if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return float(value)
    if isinstance(value, str):
        try:
            return parse_iso(value)
        except (ValueError, OverflowError):
            pass
    raise UsageError(f"{name} must be an ISO 8601 time (e.g. 2026-01-31T09:00:00Z) "
                     f"or epoch seconds, got {json.dumps(value)}")


def check_command(value: Any) -> str:
    if not isinstance(value, str):
        raise UsageError(f"command must be a string, got {json.dumps(value)}")
    if not value.strip():
        raise UsageError("command must not be empty")
    if "\x00" in value:
        raise UsageError("command must not contain NUL bytes (a shell cannot run them)")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError("command must be valid Unicode text (it has lone surrogates)") from None
    if size > MAX_COMMAND_BYTES:
        raise UsageError(f"command is {size} bytes; the limit is {MAX_COMMAND_BYTES}")
    return value


def from_mapping(data: Any) -> JobSpec:
    """Validate a decoded JSON value as a job spec."""
    if type(data) is dict and len(data) == 1 and "command" in data:
        return JobSpec(command=check_command(data["command"]))  # the common bulk line
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "null"
        raise UsageError(f"a job must be a JSON object, got {kind}")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r}; allowed: {', '.join(FIELDS)}")
    if "command" not in data:
        raise UsageError("missing field 'command'")
    if data.get("run_at") is not None and data.get("delay") is not None:
        raise UsageError("give run_at or delay, not both")
    return JobSpec(
        command=check_command(data["command"]),
        id=None if data.get("id") is None else check_id(data["id"]),
        max_retries=None if data.get("max_retries") is None
        else _integer("max_retries", data["max_retries"], 0, 1000),
        priority=0 if data.get("priority") is None
        else _integer("priority", data["priority"], *PRIORITY_RANGE),
        run_at=None if data.get("run_at") is None else _time("run_at", data["run_at"]),
        delay=None if data.get("delay") is None else _seconds("delay", data["delay"]),
        timeout=None if data.get("timeout") is None else _seconds("timeout", data["timeout"]),
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise UsageError(f"field {key!r} appears twice")
        seen[key] = value
    return seen


def _no_constants(name: str) -> Any:
    raise UsageError(f"{name} is not valid JSON")


_KEY_SEPARATOR = re.compile(r'"\s*:')


# Built once: json.loads(text, parse_constant=...) makes a new decoder every call.
_FAST = json.JSONDecoder(parse_constant=_no_constants)
_STRICT = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)


def parse_json(text: str) -> Any:
    """Strict JSON: no NaN/Infinity, no repeated keys.

    Fast path first (the C parser, 100,000 lines at a time in `enqueue --file`).
    Every key is followed by one `":` so a flat object with as many separators as
    keys cannot repeat one; anything else (nested values, a `":` inside a
    string) is parsed again with the exact duplicate check.
    """
    try:
        value = _FAST.decode(text)
        if isinstance(value, dict) and len(_KEY_SEPARATOR.findall(text)) == len(value):
            return value
        return _STRICT.decode(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"malformed JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise UsageError("malformed JSON: nested too deeply") from None
