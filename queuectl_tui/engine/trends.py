"""Trends: finished runs and failures per time bucket and run durations, per queue.

One read (`read`) for the console's Trends view, as plain data. Counts come
from the event log (a run ending is an event to `completed`, `failed` or
`dead`), durations from the attempt records (ended_at - started_at), each
joined to its job for the queue, as `metrics` reads them.

Cost is bounded whatever the size of the tables: the counts read at most
MAX_EVENTS of the newest finishing events of the span (the index on event.at,
walked newest first) and group them by queue and bucket in SQL; the durations
read at most MAX_ATTEMPTS of the newest attempt rows (by primary key) and
group them by queue and whole millisecond in SQL, so only distinct values come
back. When either cap cut the span short, the result says so (`capped_from`,
`durations_capped`) and the console says it on screen. Runs of jobs deleted
since (retention takes their events with them) are not counted.

Measured by bench/trends_read.py at 1,000,000 events (500,000 runs in 24 hours,
2 shared cores; bench/results/trends/): SQLite 5m 16 ms, 1h 116 ms, 24h 0.6 s
capped (4.1 s without); PostgreSQL 5m 12 ms, 1h 200 ms, 24h 0.4 s (3.3 s without).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import peewee as pw

from queuectl_tui.engine.states import ENDED_BADLY, State

SPANS = ("5m", "1h", "24h")
SPAN_S = {"5m": 300.0, "1h": 3600.0, "24h": 86400.0}
BUCKET_S = {"5m": 10.0, "1h": 60.0, "24h": 1800.0}  # 30, 60 and 48 buckets
MAX_EVENTS = 100_000  # finishing events read per span at most, newest first
MAX_ATTEMPTS = 20_000  # attempt rows read for durations at most, newest first
FAILED = ENDED_BADLY  # a run that ended badly: retrying, or given up


@dataclass
class QueueTrend:
    """One queue over the span: buckets oldest first."""

    name: str
    completed: list[int]
    failed: list[int]  # runs that failed (to retry or to the DLQ)
    runs: int = 0  # runs whose durations were read
    p50: float | None = None  # seconds, to the millisecond; None: no run ended
    p95: float | None = None

    @property
    def done(self) -> int:
        return sum(self.completed)

    @property
    def failures(self) -> int:
        return sum(self.failed)


@dataclass
class Trends:
    """Every queue's trend over one span ending at `now`."""

    span: str
    now: float
    start: float
    bucket_s: float
    queues: list[QueueTrend] = field(default_factory=list)
    total: QueueTrend | None = None  # every queue together
    capped_from: float | None = None  # set: counts cover only runs ended since then
    durations_capped: bool = False  # durations are of the newest MAX_ATTEMPTS runs only

    @property
    def buckets(self) -> int:
        return len(self.total.completed) if self.total else 0


def read(db: pw.Database, now: float, span: str = "1h", *, max_events: int = MAX_EVENTS,
         max_attempts: int = MAX_ATTEMPTS) -> Trends:
    """Counts per bucket and duration percentiles per queue over the span that
    ends at `now` (one of SPANS)."""
    if span not in SPAN_S:
        raise ValueError(f"unknown span {span!r}; spans: {', '.join(SPANS)}")
    if isinstance(db, pw.SqliteDatabase):
        return _read(db, now, span, max_events, max_attempts)
    with db.atomic():
        # PostgreSQL compiled these queries (their row estimates are high) and the
        # compiling took 255 of 625 ms at 100,000 events; they run once a refresh.
        db.execute_sql("SET LOCAL jit = off")
        return _read(db, now, span, max_events, max_attempts)


def _read(db: pw.Database, now: float, span: str, max_events: int,
          max_attempts: int) -> Trends:
    span_s, bucket_s = SPAN_S[span], BUCKET_S[span]
    start = now - span_s
    n = int(span_s // bucket_s)
    found = Trends(span=span, now=now, start=start, bucket_s=bucket_s)
    series: dict[str, QueueTrend] = {}

    def trend(name: str) -> QueueTrend:
        if name not in series:
            series[name] = QueueTrend(name, [0] * n, [0] * n)
        return series[name]

    for (name,) in db.execute_sql("SELECT name FROM queue").fetchall():
        trend(name)  # a quiet queue is a flat line, not a missing row
    rows, oldest, read_events = _counts(db, start, now, bucket_s, max_events)
    for queue, state, slot, count in rows:
        t = trend(queue)
        target = t.completed if state == State.COMPLETED else t.failed
        target[max(0, min(n - 1, int(slot)))] += int(count)
    if read_events >= max_events and oldest is not None:
        found.capped_from = oldest
    hist: dict[str, dict[int, int]] = {}
    top = db.execute_sql("SELECT MAX(seq) FROM attempt").fetchone()[0]
    for queue, ms, count in _durations(db, top, start, now, max_attempts):
        hist.setdefault(queue, {})[int(ms)] = int(count)
        trend(queue)
    found.durations_capped = _attempts_capped(db, top, start, max_attempts)
    everything: dict[int, int] = {}
    for queue, counts in hist.items():
        _set_percentiles(series[queue], counts)
        for ms, count in counts.items():
            everything[ms] = everything.get(ms, 0) + count
    found.queues = [series[name] for name in sorted(series)]
    total = QueueTrend("all", [sum(c) for c in zip(*(t.completed for t in found.queues))]
                       or [0] * n,
                       [sum(c) for c in zip(*(t.failed for t in found.queues))] or [0] * n)
    _set_percentiles(total, everything)
    found.total = total
    return found


def _queue_of(alias: str) -> str:
    """The queue of the job a row (`alias`.job_id) belongs to, NULL if the job is
    gone. A correlated lookup, not a join: PostgreSQL hashed the whole job table
    for the join (580 ms at 500,000 jobs for 20,000 events), where this is one
    index seek per row read (170 ms), as SQLite does either way."""
    return f"(SELECT j.queue FROM job j WHERE j.id = {alias}.job_id)"


def _floor(db: pw.Database, expr: str) -> str:
    """SQL for the floor of a non-negative number as an integer: SQLite's CAST
    truncates, PostgreSQL's rounds (so FLOOR there)."""
    if isinstance(db, pw.SqliteDatabase):
        return f"CAST({expr} AS INTEGER)"
    return f"CAST(FLOOR({expr}) AS INTEGER)"


def _counts(db: pw.Database, start: float, now: float, bucket_s: float,
            limit: int) -> tuple[list[tuple], float | None, int]:
    """(queue, outcome, bucket, count) rows of the newest `limit` finishing
    events in (start, now] (those of jobs since deleted left out; moves out of
    `processing` only: an edit of a retrying job is a `failed` -> `failed`
    event), the time of the oldest event read and how many were read. The
    inner LIMIT walks the index on event.at from `now` backwards and stops there."""
    p = db.param
    states = ", ".join(f"'{s.value}'" for s in (State.COMPLETED, *FAILED))
    slot = _floor(db, f"(e.at - {p}) / {p}")
    rows = db.execute_sql(
        f"SELECT {_queue_of('e')} AS queue, CASE WHEN e.to_state = 'completed' "
        f"THEN 'completed' ELSE 'failed' END AS outcome, {slot} AS slot, COUNT(*), MIN(e.at) "
        f"FROM (SELECT job_id, to_state, at FROM event WHERE at > {p} AND at <= {p} "
        f"AND to_state IN ({states}) AND from_state = '{State.PROCESSING.value}' "
        f"ORDER BY at DESC LIMIT {int(limit)}) e "
        "GROUP BY queue, outcome, slot",
        (start, bucket_s, start, now)).fetchall()
    oldest = min((row[4] for row in rows), default=None)
    read_rows = sum(int(row[3]) for row in rows)
    return [row[:4] for row in rows if row[0] is not None], oldest, read_rows


def _durations(db: pw.Database, top: int | None, start: float, now: float,
               limit: int) -> list[tuple]:
    """(queue, whole milliseconds, count) of runs that ended in (start, now],
    among the newest `limit` attempt rows (`top`: the highest attempt seq)."""
    p = db.param
    if top is None:
        return []
    ms = _floor(db, "(r.ended_at - r.started_at) * 1000")
    rows = db.execute_sql(
        f"SELECT queue, ms, COUNT(*) FROM (SELECT {_queue_of('r')} AS queue, {ms} AS ms "
        f"FROM attempt r WHERE r.seq > {p} AND r.ended_at > {p} AND r.ended_at <= {p} "
        f"AND r.ended_at >= r.started_at LIMIT {int(limit)}) x GROUP BY queue, ms",
        (top - limit, start, now)).fetchall()
    return [row for row in rows if row[0] is not None]


def _attempts_capped(db: pw.Database, top: int | None, start: float, limit: int) -> bool:
    """Whether attempt rows older than the newest `limit` may have ended in the
    span: the newest row below the cut ended (or started) after `start` (one seek)."""
    p = db.param
    if top is None or top <= limit:
        return False
    row = db.execute_sql(f"SELECT started_at, ended_at FROM attempt WHERE seq <= {p} "
                         "ORDER BY seq DESC LIMIT 1", (top - limit,)).fetchone()
    return row is not None and max(row[0], row[1] or row[0]) > start


def _set_percentiles(trend: QueueTrend, hist: dict[int, int]) -> None:
    """p50 and p95 by nearest rank over a histogram of whole milliseconds."""
    total = sum(hist.values())
    trend.runs = total
    if not total:
        return
    ranks = {"p50": math.ceil(0.50 * total), "p95": math.ceil(0.95 * total)}
    seen = 0
    for ms in sorted(hist):
        seen += hist[ms]
        for name, rank in list(ranks.items()):
            if seen >= rank:
                setattr(trend, name, ms / 1000.0)
                del ranks[name]
        if not ranks:
            break
