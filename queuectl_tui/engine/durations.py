"""Durations as people type them ('90', '1.5', '10s', '5m', '2h', '1d'), parsed in
one place so the CLI and the console accept exactly the same text."""

from __future__ import annotations

import re

from queuectl_tui.errors import UsageError

DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h|d)?\s*$")
# Compound: '1h30m', '2d 12h', '1m30.5s': each part with its unit, largest first.
PART = r"(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h|d)"
COMPOUND = re.compile(rf"^\s*(?:{PART}\s*){{2,5}}$")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
MAX_DURATION_S = 100 * 365 * 86400.0  # a century: anything longer is a typo


def parse_duration(text: str) -> float:
    """'90', '1.5', '10s', '5m', '2h', '1d', '1h30m' -> seconds; a UsageError otherwise."""
    match = DURATION.match(text) if text.isascii() else None
    if match:
        seconds = float(match.group(1)) * UNITS[match.group(2)]
    else:
        seconds = _compound(text)
    if seconds > MAX_DURATION_S:
        raise UsageError(f"duration {text!r} is too long (at most 100 years)")
    return seconds


def _compound(text: str) -> float:
    """'1h30m' and the like: parts with units, each unit once, largest first."""
    parts = re.findall(PART, text) if text.isascii() and COMPOUND.match(text) else []
    order = [list(UNITS).index(unit) for _, unit in parts]
    if not parts or order != sorted(order, reverse=True) or len(set(order)) != len(order):
        raise UsageError(f"invalid duration {text!r}: use seconds or a number with "
                         "ms, s, m, h or d, or several largest first (e.g. 30, 10s, 5m, "
                         "2h, 1h30m)")
    return sum(float(number) * UNITS[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """Seconds as people type them: '90' -> '1m30s', '300' -> '5m', '1.5' -> '1.5s'
    (parse_duration reads each back to the same number)."""
    if seconds < 60 or not float(seconds).is_integer():
        return f"{seconds:g}s"
    parts, rest = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
