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
from queuectl_tui.engine.states import State
from queuectl_tui.errors import UsageError

FIELDS = ("id", "command", "max_retries", "priority", "run_at", "delay", "timeout", "cwd", "env",
          "queue", "after", "unique_key", "unique_for", "no_retry_on", "key", "cpus", "mem",
          "gpus", "hold", "progress_regex")
# The assignment's own job object carries these too: accepted when they describe a
# new job (pending or held, no attempts yet); its timestamps are kept.
RECORD_FIELDS = ("state", "attempts", "created_at", "updated_at")
MAX_EPOCH_S = 253402300799.0  # 9999-12-31T23:59:59Z: the last time every face can print
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_ENV_BYTES = 65536
MAX_CWD_BYTES = 4096
QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
MAX_COMMAND_BYTES = 131071  # Linux refuses a longer single argument to exec (MAX_ARG_STRLEN)
PRIORITY_RANGE = (-1_000_000, 1_000_000)
MAX_SECONDS = 10 * 365 * 86400


@dataclass(slots=True)
class JobSpec:
    """A validated request; None means 'use the config default'.

    Treat it as read-only. It is not `frozen` because a frozen dataclass
    builds each instance through object.__setattr__ per field: 1.6 us against
    0.3, which is a tenth of a 100,000-line `enqueue --file`."""

    command: str
    id: str | None = None
    max_retries: int | None = None
    priority: int = 0
    run_at: float | None = None
    delay: float | None = None
    timeout: float | None = None
    cwd: str | None = None  # None: where the worker runs
    env: dict[str, str] | None = None
    created_at: float | None = None  # given by an imported job object; else now
    updated_at: float | None = None
    queue: str | None = None  # None: `default`
    after: tuple[str, ...] = ()  # ids of jobs that must complete first
    unique_key: str | None = None
    unique_for: float | None = None  # seconds the key stays taken after the job finished
    no_retry_on: str | None = None  # "126,127,timeout": straight to the DLQ; None: config
    key: str | None = None  # per-key limits count by it (engine/flow.py)
    cpus: float | None = None  # what it needs of its pool (engine/resources.py)
    mem: int | None = None  # bytes; also the run's enforced memory limit
    gpus: int | None = None
    progress_regex: str | None = None  # its output lines' progress (engine/progress.py)
    schedule: str | None = None  # set by the scheduler only, never from input
    schedule_tick: float | None = None
    hold: bool = False  # enqueued held: it waits for `release` (engine/hold.py)


def _name(what: str, pattern: re.Pattern, value: Any, allowed: str) -> str:
    """Ids and queue names: a safe alphabet, so they can be typed, put in file
    names and metric labels, and never need quoting."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise UsageError(f"invalid {what} {str(value)[:40]!r}: use {allowed} "
                         "(starting with a letter or digit)")
    return value


def check_id(value: Any) -> str:
    return _name("job id", ID_PATTERN, value, "1-128 letters, digits or . _ : @ + -")


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


def check_time(name: str, value: Any) -> float:
    """An ISO 8601 time or epoch seconds, between 1970 and the year 9999: a time
    outside that cannot be stored on every backend or printed by every face."""
    seconds: float | None = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, (int, float)):
        seconds = float(value) if math.isfinite(value) else None
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text) if EPOCH_TEXT.fullmatch(text) else parse_iso(text)
        except (ValueError, OverflowError):
            seconds = None
    if seconds is None:
        raise UsageError(f"{name} must be an ISO 8601 time (e.g. 2026-01-31T09:00:00Z) "
                         f"or epoch seconds, got {json.dumps(value)[:60]}")
    if not 0 <= seconds <= MAX_EPOCH_S:
        raise UsageError(f"{name} must be between 1970-01-01 and 9999-12-31 (epoch 0 to "
                         f"{MAX_EPOCH_S:.0f}), got {json.dumps(value)[:60]}")
    return seconds


EPOCH_TEXT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,9})?")


def check_cwd(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise UsageError(f"cwd must be an absolute directory path, got {json.dumps(value)[:80]}")
    if "\x00" in value or len(value.encode("utf-8", "surrogatepass")) > MAX_CWD_BYTES:
        raise UsageError("cwd must be a path without NUL bytes, at most 4096 bytes")
    return value


def check_queue(value: Any) -> str:
    return _name("queue name", QUEUE_NAME, value, "1-32 letters, digits or . _ -")


MAX_AFTER = 1000
UNIQUE_KEY = re.compile(r"[^\x00-\x1f\x7f]{1,255}")
NO_RETRY_WORDS = ("timeout", "oom")


def check_after(value: Any) -> tuple[str, ...]:
    """Job ids, as a list or one comma-separated string."""
    if value is None or value == "" or value == []:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise UsageError(f"after must be a list of job ids, got {json.dumps(value)[:60]}")
    ids = [check_id(item.strip() if isinstance(item, str) else item) for item in items]
    if len(ids) > MAX_AFTER:
        raise UsageError(f"after names {len(ids)} jobs; at most {MAX_AFTER}")
    return tuple(dict.fromkeys(ids))


def check_unique_key(value: Any) -> str:
    if not isinstance(value, str) or not UNIQUE_KEY.fullmatch(value):
        raise UsageError("unique_key must be 1-255 characters of text without control "
                         f"characters, got {json.dumps(value)[:60]}")
    return value


def check_no_retry_on(value: Any) -> str:
    """Exit codes (0-255) and the word `timeout`, as a list or "126,127,timeout";
    stored in that canonical text form."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise UsageError(f"no_retry_on must be exit codes and/or 'timeout', got "
                         f"{json.dumps(value)[:60]}")
    found: list[str] = []
    for item in items:
        if isinstance(item, bool):  # JSON true is not exit code 1
            raise UsageError(f"no_retry_on: {json.dumps(item)} is not an exit code (0-255), "
                             "'timeout' or 'oom'")
        word = str(item).strip().lower()
        if word in NO_RETRY_WORDS or (word.isascii() and word.isdigit() and int(word) <= 255):
            found.append(str(int(word)) if word.isdigit() else word)
        elif word:
            raise UsageError(f"no_retry_on: {str(item)[:20]!r} is not an exit code (0-255), "
                             "'timeout' or 'oom'")
    return ",".join(dict.fromkeys(found))


def check_env(value: Any) -> dict[str, str]:
    """Extra variables for the job: names a shell accepts, string values, bounded."""
    if not isinstance(value, dict):
        raise UsageError(f"env must be an object of NAME: value, got {json.dumps(value)[:80]}")
    size = 0
    for key, val in value.items():
        if not isinstance(key, str) or not ENV_NAME.fullmatch(key):
            raise UsageError(f"env name {key!r} is not valid: letters, digits and _, "
                             "not starting with a digit")
        if key.startswith("QUEUECTL_"):
            raise UsageError(f"env name {key} is reserved: queuectl sets QUEUECTL_* itself")
        if not isinstance(val, str) or "\x00" in val:
            raise UsageError(f"env {key} must be a string without NUL bytes")
        size += len(key) + len(val.encode("utf-8", "surrogatepass")) + 2
    if size > MAX_ENV_BYTES:
        raise UsageError(f"env is {size} bytes; the limit is {MAX_ENV_BYTES}")
    return dict(value)


def _needs(data: dict[str, Any]) -> dict[str, Any]:
    """The key and resource needs, where given (resources.py checks them)."""
    if not any(data.get(name) is not None for name in ("key", "cpus", "mem", "gpus")):
        return {}
    from queuectl_tui.engine import resources
    out: dict[str, Any] = {}
    if data.get("key") is not None:
        out["key"] = resources.check_key(data["key"])
    if data.get("cpus") is not None:
        out["cpus"] = resources.check_cpus(data["cpus"])
    if data.get("mem") is not None:
        out["mem"] = resources.parse_size(data["mem"])
    if data.get("gpus") is not None:
        out["gpus"] = resources.check_gpus(data["gpus"]) or None
    return out


def _record_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The assignment's job object: accepted as a new job only (`held` too: as
    `hold: true`)."""
    state = data.get("state", State.PENDING)
    if state not in (State.PENDING, State.HELD):
        raise UsageError(f"state must be \"pending\" or \"held\" for a new job, got "
                         f"{json.dumps(data['state'])[:40]}; finished jobs cannot be imported")
    if "attempts" in data and (isinstance(data["attempts"], bool) or data["attempts"] != 0):
        raise UsageError(f"attempts must be 0 for a new job, got "
                         f"{json.dumps(data['attempts'])[:40]}")
    hold = data.get("hold")
    if hold is not None and not isinstance(hold, bool):
        raise UsageError(f"hold must be true or false, got {json.dumps(hold)[:40]}")
    fields: dict[str, Any] = {name: check_time(name, data[name]) for name in ("created_at",
                                                                        "updated_at")
                              if data.get(name) is not None}
    if hold or state == State.HELD:
        fields["hold"] = True
    return fields


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
    unknown = sorted(set(data) - set(FIELDS) - set(RECORD_FIELDS))
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r}; allowed: {', '.join(FIELDS)} "
                         f"(and, as in a job object, {', '.join(RECORD_FIELDS)})")
    if "command" not in data:
        raise UsageError("missing field 'command'")
    if data.get("run_at") is not None and data.get("delay") is not None:
        raise UsageError("give run_at or delay, not both")
    if data.get("unique_for") is not None and data.get("unique_key") is None:
        raise UsageError("unique_for goes with unique_key (--unique-for with --unique-key): "
                         "without a key there is nothing to keep unique")
    return JobSpec(
        command=check_command(data["command"]),
        id=None if data.get("id") is None else check_id(data["id"]),
        max_retries=None if data.get("max_retries") is None
        else _integer("max_retries", data["max_retries"], 0, 1000),
        priority=0 if data.get("priority") is None
        else _integer("priority", data["priority"], *PRIORITY_RANGE),
        run_at=None if data.get("run_at") is None else check_time("run_at", data["run_at"]),
        delay=None if data.get("delay") is None else _seconds("delay", data["delay"]),
        timeout=None if data.get("timeout") is None else _seconds("timeout", data["timeout"]),
        cwd=None if data.get("cwd") is None else check_cwd(data["cwd"]),
        env=None if not data.get("env") else check_env(data["env"]),
        queue=None if data.get("queue") is None else check_queue(data["queue"]),
        after=check_after(data.get("after")),
        unique_key=None if data.get("unique_key") is None else check_unique_key(data["unique_key"]),
        unique_for=None if data.get("unique_for") is None
        else _seconds("unique_for", data["unique_for"]),
        no_retry_on=None if data.get("no_retry_on") is None
        else check_no_retry_on(data["no_retry_on"]),
        progress_regex=None if data.get("progress_regex") is None
        else _progress_pattern(data["progress_regex"]),
        **_needs(data),
        **_record_fields(data),
    )


def _progress_pattern(value: Any) -> str:
    from queuectl_tui.engine.progress import check_pattern  # only when a job gives one
    return check_pattern(value)


EDITABLE = ("command", "priority", "run_at", "delay", "timeout", "max_retries", "queue", "env",
            "unset_env", "cwd")


def check_edits(data: dict[str, Any]) -> dict[str, Any]:
    """What `edit` may change of a job that has not started, checked by the
    rules enqueue applies to the same fields. `env` adds or replaces
    variables, `unset_env` names variables to remove; `delay` stays relative
    (edit turns it into run_at by its own clock); a timeout of 0 means none."""
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise UsageError(f"{unknown[0]!r} cannot be edited; fields: {', '.join(EDITABLE)}")
    given = {name: value for name, value in data.items() if value is not None}
    if "run_at" in given and "delay" in given:
        raise UsageError("give run_at or delay, not both")
    out: dict[str, Any] = {}
    checks = {"command": check_command, "cwd": check_cwd, "queue": check_queue,
              "env": check_env, "run_at": lambda v: check_time("run_at", v),
              "delay": lambda v: _seconds("delay", v),
              "timeout": lambda v: _seconds("timeout", v),
              "priority": lambda v: _integer("priority", v, *PRIORITY_RANGE),
              "max_retries": lambda v: _integer("max_retries", v, 0, 1000)}
    for name, value in given.items():
        if name == "unset_env":
            if not isinstance(value, (list, tuple)):
                raise UsageError("unset_env must be a list of variable names")
            out[name] = [_env_name(item) for item in value]
        else:
            out[name] = checks[name](value)
    both = set(out.get("env", {})) & set(out.get("unset_env", ()))
    if both:
        raise UsageError(f"env {sorted(both)[0]} is both set and unset")
    return out


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
        raise UsageError(f"env name {str(value)[:40]!r} is not valid: letters, digits and _, "
                         "not starting with a digit")
    return value


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
    Every key written is followed by a colon: an object with no more colons
    than keys cannot repeat one (counted first over the whole line, then as
    `":` separators for commands that hold a colon); anything else (nested
    values, a `":` inside a string) is parsed again with the exact duplicate
    check.
    """
    try:
        if text[:1] == "{":  # raw_decode: no whitespace scans around the value
            value, end = _FAST.raw_decode(text)
            if end != len(text):
                value = _FAST.decode(text)  # trailing whitespace, or an error to report
        else:
            value = _FAST.decode(text)
        if isinstance(value, dict) and (text.count(":") == len(value)
                                        or len(_KEY_SEPARATOR.findall(text)) == len(value)):
            return value
        return _STRICT.decode(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"malformed JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise UsageError("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise UsageError(f"malformed JSON: {str(exc).split(';')[0]}") from None


def looks_like_json(text: str) -> bool:
    """Is this text meant as a JSON job object? `{"` is how every JSON object with
    a field starts; a shell line such as `{ echo a; }` or `[ -f x ]` is not."""
    return bool(_JSON_START.match(text))


_JSON_START = re.compile(r'\s*\{\s*(?:"|\})')
