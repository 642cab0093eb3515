"""Rate limits: at most N starts of a queue's jobs in any window of PERIOD.

A sliding log of starts (`queue_start`, written by the claim: engine/flow.py)
is counted, not a fixed bucket, so no two adjacent windows can add up to 2N.
Rows older than the period are removed as new ones are written, so the log
holds at most N rows per queue (per key with `per_key`) beyond the window.
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


def closed(db: pw.Database, by_queue: dict[str, Rate], names: list[str], now: float) -> set[str]:
    """Queues among `names` whose whole-queue rate is used up in the window ending now."""
    return {name for name in names
            if (rate := by_queue.get(name)) and not rate.per_key
            and _starts(db, name, None, now - rate.period) >= rate.limit}


def reopens_at(db: pw.Database, by_queue: dict[str, Rate], names: list[str],
               now: float) -> float | None:
    """When the earliest rate-closed queue (or key) among `names` may start a job
    again: idle workers sleep until then instead of polling."""
    times: list[float] = []
    for name in names:
        rate = by_queue.get(name)
        if rate is None:
            continue
        p = db.param
        since = now - rate.period
        if rate.per_key:
            rows = db.execute_sql(
                f"SELECT key FROM queue_start WHERE queue = {p} AND at > {p} AND key IS NOT NULL "
                f"GROUP BY key HAVING COUNT(*) >= {p}", (name, since, rate.limit)).fetchall()
            times += [_nth_start(db, name, row[0], since, rate.limit) + rate.period
                      for row in rows]
        elif _starts(db, name, None, since) >= rate.limit:
            times.append(_nth_start(db, name, None, since, rate.limit) + rate.period)
    return min(times, default=None)


def window(db: pw.Database, name: str, rate: Rate, now: float) -> dict[str, Any]:
    """The rate's current window for people: starts used of allowed, and when the
    next start is allowed (None: now). Per key: the busiest key's."""
    since = now - rate.period
    p = db.param
    if rate.per_key:
        row = db.execute_sql(
            f"SELECT key, COUNT(*) AS n FROM queue_start WHERE queue = {p} AND at > {p} "
            f"AND key IS NOT NULL GROUP BY key ORDER BY n DESC LIMIT 1", (name, since)).fetchone()
        key, count = (row[0], int(row[1])) if row else (None, 0)
    else:
        key, count = None, _starts(db, name, None, since)
    next_at = None
    if count >= rate.limit:
        next_at = _nth_start(db, name, key, since, rate.limit) + rate.period
    return {"limit": rate.limit, "period": rate.period, "per_key": rate.per_key,
            "rate": rate.describe(), "used": count, "busiest_key": key,
            "next_start_at": iso(next_at) if next_at is not None else None,
            "next_start_in": None if next_at is None else round(max(0.0, next_at - now), 3)}


def _starts(db: pw.Database, queue: str, key: str | None, since: float) -> int:
    p = db.param
    if key is None:
        return int(db.execute_sql(f"SELECT COUNT(*) FROM queue_start WHERE queue = {p} "
                                  f"AND at > {p}", (queue, since)).fetchone()[0])
    return int(db.execute_sql(f"SELECT COUNT(*) FROM queue_start WHERE queue = {p} "
                              f"AND key = {p} AND at > {p}", (queue, key, since)).fetchone()[0])


def _nth_start(db: pw.Database, queue: str, key: str | None, since: float, n: int) -> float:
    """The time of the n-th latest start in the window: when it leaves the
    window, a start is allowed again."""
    p = db.param
    where, params = (f"queue = {p} AND at > {p}", [queue, since]) if key is None else \
        (f"queue = {p} AND key = {p} AND at > {p}", [queue, key, since])
    row = db.execute_sql(f"SELECT at FROM queue_start WHERE {where} ORDER BY at DESC "
                         f"LIMIT 1 OFFSET {int(n) - 1}", params).fetchone()
    return float(row[0]) if row else since


def keys_at_rate(db: pw.Database, queue: str, rate: Rate, now: float) -> set[str]:
    p = db.param
    rows = db.execute_sql(
        f"SELECT key FROM queue_start WHERE queue = {p} AND at > {p} AND key IS NOT NULL "
        f"GROUP BY key HAVING COUNT(*) >= {p}", (queue, now - rate.period, rate.limit)).fetchall()
    return {row[0] for row in rows}


