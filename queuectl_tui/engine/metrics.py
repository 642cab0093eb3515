"""Metrics: the queue's numbers in the Prometheus text format, read at scrape time.

Nothing is counted in memory: every scrape reads the database, so the figures
agree with `status`, `queue list` and the console, whichever process serves
them (`queuectl metrics`, or a pool's `/metrics` with `worker start
--metrics-port`). Only those two import this module (and prometheus_client).

Cost per scrape: one GROUP BY over the index (queue, state, seq) for the
counts (the bulk of it at 1,000,000 jobs: docs/production.md, Metrics; measured
by bench/metrics_scrape.py), one index seek per queue for the oldest due job,
the paused jobs among the running ones, a few `meta` rows, the worker rows, the
running jobs (by the state index) for their progress, and the runs of a recent
window (WINDOW_S, at most SAMPLE_ROWS of the newest attempt and event rows, by
their primary keys) for durations and pickup delays.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import peewee as pw
from prometheus_client.core import (CounterMetricFamily, GaugeHistogramMetricFamily,
                                    GaugeMetricFamily)
from prometheus_client.registry import Collector, CollectorRegistry

from queuectl_tui.engine import config, flow, queues, rates, registry, reports, retention
from queuectl_tui.engine.context import Store
from queuectl_tui.engine.states import FINAL, STATES, State

DEFAULT_HOST = "127.0.0.1"  # --metrics-host: this host only unless told otherwise
WINDOW_S = 600.0  # durations and pickup delays: runs of the last 10 minutes
SAMPLE_ROWS = 5_000  # ... and at most this many of the newest rows: a busy queue stays cheap
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
PICKUP_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0)
WORKER_STATES = ("idle", "busy", "stopping", "gone")


@dataclass
class Histogram:
    buckets: list[int]  # cumulative counts, one per bound
    count: int = 0
    total: float = 0.0


@dataclass
class Snapshot:
    """What one scrape read, as plain data (`families` turns it into metrics)."""

    queues: list[str] = field(default_factory=list)
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (queue, state)
    finished: dict[tuple[str, str], int] = field(default_factory=dict)  # (queue, outcome)
    durations: dict[str, Histogram] = field(default_factory=dict)
    pickup: dict[str, Histogram] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)
    oldest_due_age: dict[str, float] = field(default_factory=dict)
    rates: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # used, limit, period
    pools: list[dict[str, Any]] = field(default_factory=list)  # flow.pool_usage rows
    paused: dict[str, int] = field(default_factory=dict)  # running jobs paused, per queue
    progress: list[tuple[str, str, float]] = field(default_factory=list)  # queue, job, fraction


def read(db: pw.Database, backend: Any, now: float) -> Snapshot:
    """Everything a scrape shows, read from the database now."""
    snap = Snapshot()
    for queue, state, n in db.execute_sql(
            "SELECT queue, state, COUNT(*) FROM job GROUP BY queue, state").fetchall():
        if state in STATES:  # not `staged`: a bulk enqueue still being written
            snap.jobs[(queue, state)] = n
    snap.paused = dict(db.execute_sql(
        f"SELECT queue, COUNT(*) FROM job WHERE state = '{State.PROCESSING.value}' "
        "AND paused_at IS NOT NULL GROUP BY queue").fetchall())
    named = [row[0] for row in db.execute_sql("SELECT name FROM queue ORDER BY name")]
    snap.queues = sorted(set(named) | {queue for queue, _ in snap.jobs})
    snap.finished = finished_totals(snap.jobs, retention.removed_so_far(db))
    for queue in snap.queues:
        first = backend.next_run_at([queue])  # MIN(run_at) of claimable jobs: one seek
        snap.oldest_due_age[queue] = 0.0 if first is None else max(0.0, now - first)
    rules = queues.read_rules(db)
    for queue, rate in rules.rates.items():
        window = rates.window(db, queue, rate, now)
        snap.rates[queue] = (window["used"], rate.limit, rate.period)
    snap.durations = _durations(db, now - WINDOW_S)
    snap.pickup = _pickup(db, now - WINDOW_S)
    snap.progress = reports.running(db)
    lease = float(config.get("lease-seconds"))
    snap.pools = flow.pool_usage(db, registry.live_workers(now=now, lease=lease))
    snap.workers = {state: 0 for state in WORKER_STATES}
    for w in registry.all_workers(now=now):
        shown = registry.shown_state(w, now=now, lease=lease)
        if shown in snap.workers:
            snap.workers[shown] += 1
    return snap


def finished_totals(jobs: dict[tuple[str, str], int],
                    removed: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Jobs that ended completed, dead or cancelled, per queue: the rows in that
    state now plus those removed so far (retention, `delete` and `dlq purge`
    count them as they delete: `retention.count_removed`).

    Monotonic under pruning, `delete` and `dlq purge` (they count what they
    remove). A requeue (or `dlq retry`) takes a job back out of its final state:
    then the counter goes down by one, which Prometheus reads as a counter reset."""
    keys = {k for k in jobs if k[1] in FINAL} | set(removed)
    return {key: jobs.get(key, 0) + removed.get(key, 0) for key in sorted(keys)}


def _window(db: pw.Database, table: str, rows_sql: str,
            bounds: tuple[float, ...], since: float) -> dict[str, Histogram]:
    """A histogram per queue of `d` over the rows of `rows_sql` (a SELECT of
    `queue` and `d` from `table` aliased `r`, whose WHERE takes the lowest seq and
    `since`): only the newest SAMPLE_ROWS rows of `table` by primary key. The
    inner LIMIT keeps SQLite from merging the rows into the grouped query, which
    would walk every job by (queue, ...) to save the GROUP BY's sort."""
    top = db.execute_sql(f"SELECT MAX(seq) FROM {table}").fetchone()[0]
    if top is None:
        return {}
    buckets = ", ".join(f"SUM(CASE WHEN d <= {b!r} THEN 1 ELSE 0 END)" for b in bounds)
    rows = db.execute_sql(f"SELECT queue, COUNT(*), SUM(d), {buckets} "
                          f"FROM ({rows_sql} LIMIT {SAMPLE_ROWS}) x GROUP BY queue",
                          (top - SAMPLE_ROWS, since)).fetchall()
    return {row[0]: Histogram(buckets=[int(n or 0) for n in row[3:]], count=int(row[1]),
                              total=float(row[2] or 0.0)) for row in rows}


def _durations(db: pw.Database, since: float) -> dict[str, Histogram]:
    """Runs that ended since `since`: ended_at - started_at, per queue."""
    p = db.param
    return _window(db, "attempt", "SELECT j.queue AS queue, r.ended_at - r.started_at AS d "
                   "FROM attempt r JOIN job j ON j.id = r.job_id "
                   f"WHERE r.seq > {p} AND r.ended_at >= {p}", DURATION_BUCKETS, since)


def _pickup(db: pw.Database, since: float) -> dict[str, Histogram]:
    """Claim time minus due time (`run_at`: enqueue time, the time asked for, or
    the retry's backoff) for claims since `since`. Only a job's latest claim
    (its time is the job's `started_at`) still has its due time in the row (a
    retry moves `run_at`), and claims of jobs waiting again are left out."""
    p = db.param
    return _window(db, "event", "SELECT j.queue AS queue, "
                   "CASE WHEN r.at > j.run_at THEN r.at - j.run_at ELSE 0 END AS d "
                   "FROM event r JOIN job j ON j.id = r.job_id AND j.started_at = r.at "
                   f"WHERE r.seq > {p} AND r.at >= {p} AND r.to_state = 'processing' "
                   "AND r.from_state IN ('pending', 'failed') "
                   "AND j.state NOT IN ('pending', 'failed')", PICKUP_BUCKETS, since)


def families(snap: Snapshot) -> Iterator[Any]:
    """The snapshot as Prometheus metric families."""
    jobs = GaugeMetricFamily("queuectl_jobs", "Jobs in the database per queue and state "
                             "(the counts `status` and `queue list` show)",
                             labels=["queue", "state"])
    for queue in snap.queues:
        for state in STATES:
            jobs.add_metric([queue, state], snap.jobs.get((queue, state), 0))
    yield jobs

    finished = CounterMetricFamily(
        "queuectl_jobs_finished", "Jobs that reached a final state per queue and outcome: "
        "rows in that state now plus those pruned or deleted so far (a requeue takes one "
        "back)", labels=["queue", "outcome"])
    for queue in snap.queues:
        for state in FINAL:
            finished.add_metric([queue, state], snap.finished.get((queue, state), 0))
    yield finished

    paused = GaugeMetricFamily("queuectl_jobs_paused", "Running jobs whose processes are "
                               "stopped by `queuectl pause`, per queue (counted in "
                               "queuectl_jobs' processing too)", labels=["queue"])
    for queue in snap.queues:
        paused.add_metric([queue], snap.paused.get(queue, 0))
    yield paused

    dlq = GaugeMetricFamily("queuectl_dlq_jobs", "Dead jobs waiting in the DLQ per queue",
                            labels=["queue"])
    for queue in snap.queues:
        dlq.add_metric([queue], snap.jobs.get((queue, State.DEAD), 0))
    yield dlq

    oldest = GaugeMetricFamily(
        "queuectl_oldest_due_job_age_seconds", "How long the oldest due job (pending or "
        "failed, run_at passed) of each queue has been waiting; 0 when none is due",
        labels=["queue"])
    for queue in snap.queues:
        oldest.add_metric([queue], round(snap.oldest_due_age.get(queue, 0.0), 3))
    yield oldest

    workers = GaugeMetricFamily(
        "queuectl_workers", "Worker processes by state (idle, busy, stopping: alive; gone: "
        "died or lost their heartbeat within the last hour)", labels=["state"])
    for state in WORKER_STATES:
        workers.add_metric([state], snap.workers.get(state, 0))
    yield workers

    yield from _flow_families(snap)

    running = GaugeMetricFamily(
        "queuectl_job_progress_ratio", "How far each running job that reports progress is "
        "(0 to 1): only running jobs, so as many series as jobs run at once",
        labels=["queue", "job"])
    for queue, job_id, fraction in snap.progress:
        running.add_metric([queue, job_id], round(fraction, 4))
    yield running

    for name, text, data, bounds in (
            ("queuectl_job_duration_seconds", "Run time of job runs that ended in the last "
             f"{WINDOW_S / 60:g} minutes, per queue", snap.durations, DURATION_BUCKETS),
            ("queuectl_pickup_delay_seconds", "Time from due (run_at) to claim of jobs "
             f"claimed in the last {WINDOW_S / 60:g} minutes, per queue", snap.pickup,
             PICKUP_BUCKETS)):
        family = GaugeHistogramMetricFamily(name, text, labels=["queue"])
        for queue in snap.queues:
            hist = data.get(queue, Histogram(buckets=[0] * len(bounds)))
            buckets = [(f"{b:g}", n) for b, n in zip(bounds, hist.buckets)]
            buckets.append(("+Inf", hist.count))
            family.add_metric([queue], buckets, round(hist.total, 6))
        yield family


def _flow_families(snap: Snapshot) -> Iterator[Any]:
    """Rates in their current window, and each live pool's capacity and use."""
    used = GaugeMetricFamily("queuectl_queue_rate_starts", "Starts of the queue's jobs in "
                             "its rate's current window (per key: the busiest key's)",
                             labels=["queue"])
    allowed = GaugeMetricFamily("queuectl_queue_rate_limit", "Starts the queue's rate allows "
                                "per window", labels=["queue", "period_seconds"])
    for queue, (n, limit, period) in sorted(snap.rates.items()):
        used.add_metric([queue], n)
        allowed.add_metric([queue, f"{period:g}"], limit)
    yield used
    yield allowed
    capacity = GaugeMetricFamily("queuectl_pool_capacity", "What a live pool's jobs may "
                                 "use at once (cpus: cores, mem: bytes, gpus: devices)",
                                 labels=["pool", "resource"])
    held = GaugeMetricFamily("queuectl_pool_used", "What a live pool's running jobs "
                             "stated they need", labels=["pool", "resource"])
    for pool in snap.pools:
        if pool["capacity"] is not None:
            for name in ("cpus", "mem"):
                capacity.add_metric([pool["pool"], name], pool["capacity"][name])
            capacity.add_metric([pool["pool"], "gpus"], len(pool["capacity"]["gpus"]))
        for name in ("cpus", "mem"):
            held.add_metric([pool["pool"], name], pool["used"][name])
        held.add_metric([pool["pool"], "gpus"], len(pool["used"]["gpus"]))
    yield capacity
    yield held


class QueueCollector(Collector):
    """Reads the database on every scrape. Safe to call from any thread: peewee
    keeps one connection per thread, so a serving thread opens its own (and
    closes it again: prometheus_client answers each request in a new thread)."""

    def __init__(self, db: pw.Database, backend: Any, now: Callable[[], float]) -> None:
        self.db, self.backend, self.now = db, backend, now

    def collect(self) -> Iterator[Any]:
        opened_here = self.db.is_closed()
        if opened_here:
            self.db.connect()
        try:
            with snapshot(self.db):
                snap = read(self.db, self.backend, self.now())
        finally:
            if opened_here:
                self.db.close()
        yield from families(snap)


def snapshot(db: pw.Database) -> Any:
    """A read-only transaction that sees one state of the database, so the rows
    counted and the pruned totals agree even while a prune commits: a deferred
    BEGIN on SQLite (takes no write lock), REPEATABLE READ on PostgreSQL."""
    if isinstance(db, pw.SqliteDatabase):
        return db.atomic(lock_type="DEFERRED")
    return db.atomic(isolation_level="REPEATABLE READ")


def registry_for(handle: Store) -> CollectorRegistry:
    """A registry holding only the queue's collector (no process or GC metrics:
    the numbers describe the queue, not whichever process serves them)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(QueueCollector(handle.db, handle.backend, handle.clock.now))
    return reg


def exposition(handle: Store) -> str:
    from prometheus_client import generate_latest
    return generate_latest(registry_for(handle)).decode("utf-8")


def serve(handle: Store, port: int, host: str | None = None) -> tuple[Any, str]:
    """Serve /metrics from a thread of this process (a pool's supervisor):
    returns the server (`.shutdown()` stops it) and its URL. A port that cannot
    be bound is a QueuectlError, said before any worker starts."""
    from prometheus_client import start_http_server

    from queuectl_tui.errors import QueuectlError
    where = host or DEFAULT_HOST
    shown = f"[{where}]:{port}" if ":" in where else f"{where}:{port}"
    try:
        server, _thread = start_http_server(port, addr=where, registry=registry_for(handle))
    except OSError as exc:
        why = ("the address is already in use (another pool or program serves that port)"
               if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc))
        raise QueuectlError(f"cannot serve metrics on {shown}: {why}; pick another "
                            "--metrics-port") from None
    return server, f"http://{shown}/metrics"
