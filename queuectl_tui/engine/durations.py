"""Durations as people type them ('90', '1.5', '10s', '5m', '2h', '1d'), parsed in
one place so the CLI and the console accept exactly the same text."""

from __future__ import annotations

import re

from queuectl_tui.errors import UsageError

DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h|d)?\s*$")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
MAX_DURATION_S = 100 * 365 * 86400.0  # a century: anything longer is a typo


def parse_duration(text: str) -> float:
    """'90', '1.5', '10s', '5m', '2h', '1d' -> seconds; a UsageError otherwise."""
    match = DURATION.match(text) if text.isascii() else None
    if not match:
        raise UsageError(f"invalid duration {text!r}: use seconds or a number with "
                         "ms, s, m, h or d (e.g. 30, 10s, 5m, 2h)")
    seconds = float(match.group(1)) * UNITS[match.group(2)]
    if seconds > MAX_DURATION_S:
        raise UsageError(f"duration {text!r} is too long (at most 100 years)")
    return seconds
