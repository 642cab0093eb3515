"""Rate limits: at most N starts of a queue's jobs in any window of PERIOD.

A sliding log of starts (`queue_start`, written by the claim: engine/flow.py)
is counted, not a fixed bucket, so no two adjacent windows can add up to 2N.
Rows older than the period are removed as new ones are written, so the log
holds what is in the window (at most N per queue, or per key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import peewee as pw

from queuectl_tui.clock import iso
from queuectl_tui.errors import UsageError

MAX_RATE = 1_000_000
MAX_PERIOD_S = 7 * 86400.0
_PERIOD_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"\s*([0-9]{1,7})\s*/\s*([0-9]{0,6}(?:\.[0-9]{1,3})?)\s*([smhd]?)\s*",
                   re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    """At most `limit` starts in any `period` seconds (per key value: `per_key`)."""

    limit: int
    period: float
    per_key: bool = False

    def describe(self) -> str:
        return f"{self.limit}/{format_period(self.period)}" + (" per key" if self.per_key else "")


def parse_rate(text: str) -> tuple[int, float] | None:
    """'100/1m', '5/1s', '10/s', '3/2h' -> (limit, seconds); 'none' -> None."""
    if text.strip().lower() in ("none", "off", "0"):
        return None
    match = _RATE.fullmatch(text)
    if not match:
        raise UsageError(f"invalid rate {text!r}: N/PERIOD, e.g. 100/1m, 5/1s or 2/30s "
                         "(none to clear)")
    limit = int(match.group(1))
    amount = float(match.group(2)) if match.group(2) else 1.0
    period = amount * _PERIOD_UNITS[(match.group(3) or "s").lower()]
    if not 1 <= limit <= MAX_RATE:
        raise UsageError(f"rate {text!r}: the number of starts must be 1-{MAX_RATE}")
    if not 0.001 <= period <= MAX_PERIOD_S:
        raise UsageError(f"rate {text!r}: the period must be between 1ms and 7d")
    return limit, period


def format_period(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        size = _PERIOD_UNITS[unit]
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"


WHOLE = ""  # the key of a whole-queue rate's starts


def closed(db: pw.Database, by_queue: dict[str, Rate], names: list[str], now: float) -> set[str]:
    """Queues among `names` whose whole-queue rate is used up in the window ending now."""
    return {name for name in names
            if (rate := by_queue.get(name)) and not rate.per_key
            and _nth_latest(db, name, WHOLE, rate.limit, now - rate.period) is not None}


def keys_at_rate(db: pw.Database, queue: str, rate: Rate, now: float) -> set[str]:
    """The keys of a per-key rate that are used up now."""
    p = db.param
    rows = db.execute_sql(
        f"SELECT key FROM queue_start WHERE queue = {p} AND key <> '' AND at > {p} "
        f"GROUP BY key HAVING COUNT(*) >= {p}", (queue, now - rate.period, rate.limit)).fetchall()
    return {row[0] for row in rows}


def record(db: pw.Database, backend: Any, queue: str, rate: Rate, key: str | None,
           now: float) -> None:
    """A start of `queue`'s job (of `key`, for a per-key rate), and the starts
    that have left the window removed (one statement on PostgreSQL)."""
    if rate.per_key and key is None:
        return  # jobs without a key are not limited per key
    backend.record_start(queue, key if rate.per_key else WHOLE, now, now - rate.period)


def reopens_at(db: pw.Database, by_queue: dict[str, Rate], names: list[str],
               now: float) -> float | None:
    """When the earliest rate-closed queue (or key) among `names` may start a job
    again: idle workers sleep until then instead of polling."""
    times: list[float] = []
    for name in names:
        rate = by_queue.get(name)
        if rate is None:
            continue
        keys = keys_at_rate(db, name, rate, now) if rate.per_key else {WHOLE}
        for key in keys:
            at = _nth_latest(db, name, key, rate.limit, now - rate.period)
            if at is not None:
                times.append(at + rate.period)
    return min(times, default=None)


def reopens_for(db: pw.Database, queue: str, rate: Rate, key: str | None,
                now: float) -> float | None:
    """When a job of `queue` (with `key`) may start again by this rate (None: now)."""
    if rate.per_key and key is None:
        return None
    at = _nth_latest(db, queue, key if rate.per_key else WHOLE, rate.limit, now - rate.period)
    return None if at is None else at + rate.period


def window(db: pw.Database, name: str, rate: Rate, now: float) -> dict[str, Any]:
    """The rate's current window for people: starts used of allowed, and when the
    next start is allowed (None: now). Per key: the busiest key's."""
    since = now - rate.period
    p = db.param
    row = db.execute_sql(
        f"SELECT key, COUNT(*) AS n FROM queue_start WHERE queue = {p} AND at > {p} "
        f"AND key {'<>' if rate.per_key else '='} '' GROUP BY key ORDER BY n DESC LIMIT 1",
        (name, since)).fetchone()
    key, count = (row[0], int(row[1])) if row else (WHOLE, 0)
    at = _nth_latest(db, name, key, rate.limit, since)
    return {"limit": rate.limit, "period": rate.period, "per_key": rate.per_key,
            "rate": rate.describe(), "used": count, "busiest_key": key or None,
            "next_start_at": iso(at + rate.period) if at is not None else None,
            "next_start_in": None if at is None else round(max(0.0, at + rate.period - now), 3)}


def _nth_latest(db: pw.Database, queue: str, key: str, n: int, since: float) -> float | None:
    """The time of the n-th latest start of `queue`/`key` if it is inside the
    window (after `since`): then n starts are in it, and the next waits until
    it leaves. A walk of at most n index entries; only idle workers and readers
    ask (a claim counts in its one read: engine/headroom.py)."""
    p = db.param
    row = db.execute_sql(
        f"SELECT at FROM queue_start WHERE queue = {p} AND key = {p} AND at > {p} "
        f"ORDER BY at DESC LIMIT 1 OFFSET {int(n) - 1}", (queue, key, since)).fetchone()
    return float(row[0]) if row else None
