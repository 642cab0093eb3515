"""Filter text -> queries: `state:dead queue:mail key:c1 schedule:nightly cmd:curl id:ab text`.

`key:c1` keeps the jobs enqueued with that exact `--key` (like `queue:`).
`since:1h` (30m, 2d, ...) keeps jobs created within that long before the
read (the window slides with the clock); several since: terms keep the widest.
`group:3fa2` keeps the dead jobs of the DLQ failure groups whose id begins so.

Field terms of the same field are alternatives, different fields must all
match, and words without a field match an id prefix or the command text.
A value may be quoted to hold spaces: `cmd:"sleep 5"`. What the filter does
not understand is said, never quietly searched for as text: an unknown field
(`foo:bar`; `text:foo:bar` searches for that text, and `http://…` is text) and
an unclosed quote.
"""

from __future__ import annotations

import shlex

from queuectl_tui.engine import (STATES, EventQuery, JobQuery, check_group_id, parse_duration,
                                 state_named)
from queuectl_tui.errors import QueuectlError

JOB_FIELDS = {"state": "states", "id": "ids", "cmd": "commands", "command": "commands",
              "worker": "workers", "queue": "queues", "q": "queues", "key": "keys",
              "schedule": "schedules", "since": "since", "group": "groups"}
EVENT_FIELDS = {"job": "job_ids", "id": "job_ids", "state": "states", "to": "states",
                "worker": "workers"}
TEXT_FIELD = "text"  # text:a:b searches for "a:b"


class FilterError(ValueError):
    """The filter text cannot be understood; the message says why."""


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        raise FilterError(f"unclosed quote in {text.strip()!r}: close it (or put a \\ "
                          "before a quote meant as text)") from None


def _is_field(name: str, value: str) -> bool:
    """Does `name:value` mean a field? A word of letters before the colon does,
    unless what follows reads as a URL's rest (`http://…`)."""
    return name.isalpha() and not value.startswith("//")


def _state(value: str) -> list[str]:
    found = []
    for part in value.split(","):
        name = state_named(part)  # the one vocabulary (engine/states.py STATE_ALIASES)
        if name is None:
            raise FilterError(f"unknown state {part!r}; states: {', '.join(STATES)}")
        found.append(name)
    return found


def _group(value: str) -> str:
    try:
        return check_group_id(value)
    except QueuectlError as exc:
        raise FilterError(f"group: {exc}") from None


def _split(text: str, fields: dict[str, str]) -> dict[str, list[str]]:
    terms: dict[str, list[str]] = {name: [] for name in set(fields.values()) | {"text"}}
    for word in _words(text):
        name, sep, value = word.partition(":")
        if sep and name.lower() == TEXT_FIELD:
            terms["text"].append(value)
            continue
        target = fields.get(name.lower()) if sep else None
        if target is None:
            if sep and _is_field(name, value):
                known = " ".join([*dict.fromkeys(fields), TEXT_FIELD])
                raise FilterError(f"unknown field {name!r} in {word!r}; fields: {known} "
                                  f"(text:{word} searches for the text)")
            terms["text"].append(word)
            continue
        if not value:
            raise FilterError(f"{name}: needs a value, e.g. {name}:something")
        if target == "groups":
            value = _group(value)
        terms[target].extend(_state(value) if target == "states" else [value])
    return terms


def _since(values: list[str]) -> float | None:
    """The widest of the since: windows, in seconds (None: no since: term)."""
    try:
        return max((parse_duration(v) for v in values), default=None)
    except QueuectlError as exc:
        raise FilterError(f"since: {exc}") from None


def parse_jobs(text: str, *, sort: str = "age", descending: bool = True) -> JobQuery:
    t = _split(text, JOB_FIELDS)
    return JobQuery(states=tuple(dict.fromkeys(t["states"])), ids=tuple(t["ids"]),
                    commands=tuple(t["commands"]), workers=tuple(t["workers"]),
                    text=tuple(t["text"]), queues=tuple(dict.fromkeys(t["queues"])),
                    schedules=tuple(dict.fromkeys(t["schedules"])),
                    keys=tuple(dict.fromkeys(t["keys"])), since=_since(t["since"]),
                    groups=tuple(dict.fromkeys(t["groups"])),
                    sort=sort, descending=descending)


def parse_events(text: str) -> EventQuery:
    t = _split(text, EVENT_FIELDS)
    return EventQuery(job_ids=tuple(t["job_ids"]), states=tuple(dict.fromkeys(t["states"])),
                      workers=tuple(t["workers"]), text=tuple(t["text"]))


def with_states(query: JobQuery, states: tuple[str, ...]) -> JobQuery:
    """Narrow a query to a state tab: the tab and any state: terms must both hold."""
    if not states:
        return query
    if not query.states:
        return JobQuery(**{**query.__dict__, "states": states})
    both = tuple(s for s in query.states if s in states)
    # Nothing in common: keep an impossible filter rather than silently widening it.
    return JobQuery(**{**query.__dict__, "states": both or ("\x00none",)})
