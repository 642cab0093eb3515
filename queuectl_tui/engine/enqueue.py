"""Adding jobs: all or nothing, with config defaults filled in, dependencies and
unique keys checked in the same transaction. A file too big for one short
transaction takes the staged bulk path (engine/batches.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import peewee as pw

from queuectl_tui.engine import batches, config, dependencies, queues, reads, uniqueness
from queuectl_tui.engine.storage.columns import JOB_INSERT, QUEUE_COLUMN
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.states import State
from queuectl_tui.errors import Conflict, DatabaseError, UsageError

if TYPE_CHECKING:
    from queuectl_tui.engine.jobspec import JobSpec


def enqueue_many(ctx: Context, specs: list[JobSpec], default_cwd: str | None = None,
                 written: list[dict[str, Any]] | None = None) -> list[str]:
    """Insert all or nothing; returns the ids. A duplicate id (in the batch or
    already stored) refuses the lot. Jobs that name no directory run in
    `default_cwd` (the CLI passes the one it was started in). `written`, for
    a small batch, gets each job's shape as inserted, read in the enqueue's
    transaction: a worker may claim and even finish it the moment that commits."""
    staged = len(specs) > batches.SLICE_ROWS  # too big for one short transaction
    rows = _rows(ctx, specs, default_cwd)
    now = ctx.clock.now()  # when it was enqueued here (a job object may bring older times)
    given = [s.id for s in specs if s.id is not None]
    seen: set[str] = set()
    for job_id in given:
        if job_id in seen:
            raise UsageError(f"duplicate job id {job_id!r} in the input")
        seen.add(job_id)
    named = {row[QUEUE_COLUMN] for row in rows}
    needing: dict[str, tuple[float, int, int]] = {}  # queue -> the most any job needs
    for spec in specs:
        if spec.cpus or spec.mem or spec.gpus:
            name = spec.queue or queues.DEFAULT
            most = needing.get(name, (0.0, 0, 0))
            needing[name] = (max(most[0], spec.cpus or 0.0), max(most[1], spec.mem or 0),
                             max(most[2], spec.gpus or 0))
    special = any(s.after or s.unique_key for s in specs)
    if staged and special:
        raise UsageError(f"after and unique_key work in files of up to "
                         f"{batches.SLICE_ROWS:,} jobs; split the file")
    if staged:
        with ctx.db.atomic():
            queues.ensure(named, now, needing)
        ids = batches.enqueue_staged(ctx, rows, JOB_INSERT, given)
    else:
        with ctx.db.atomic():
            queues.ensure(named, now, needing)
            batches.free_ids(ctx, given)
            if special:
                rows = _with_rules(ctx, specs, rows, now)
            insert_job_rows(ctx, JOB_INSERT, rows)
            ctx.backend.notify()
            by = ctx.actor.label if ctx.actor else None
            ctx.backend.insert_rows("event", ("job_id", "to_state", "at", "attempt", "actor"),
                                    [(r[0], r[2], now, 0, by) for r in rows])
            if written is not None:
                written.extend(reads.detail(r[0]) for r in rows)
        ids = [r[0] for r in rows]
    lost = ctx.backend.lost_writes()
    if lost:
        raise DatabaseError(f"{lost}: the enqueue may be lost; stop every queuectl "
                            "process on this database and check it")
    return ids


def insert_job_rows(ctx: Context, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Write new job rows; an id taken since the caller checked refuses them all."""
    try:
        ctx.backend.insert_rows("job", columns, rows)
    except pw.IntegrityError:
        # Another process took one of these ids between our check and insert.
        raise Conflict("a job with one of these ids already exists; "
                       "nothing was enqueued") from None


def _with_rules(ctx: Context, specs: list[JobSpec], rows: list[tuple],
                now: float) -> list[tuple]:
    """Dependencies and unique keys, checked and written in the enqueue's own
    transaction; jobs that wait for others start `blocked` (held ones stay
    held: their release decides)."""
    ids = [row[0] for row in rows]
    initial = dependencies.check(specs, ids, ctx.backend.share_rows)
    uniqueness.take(ctx.db, specs, ids, now)
    links = dependencies.rows(specs, ids)
    if links:
        ctx.backend.insert_rows("dependency", ("job_id", "needs"), links)
    return [(row[0], row[1], row[2] if row[2] == State.HELD else initial.get(row[0], row[2]),
             *row[3:]) for row in rows]


def _rows(ctx: Context, specs: list[JobSpec], default_cwd: str | None = None) -> list[tuple]:
    """Row tuples in JOB_INSERT order, with config defaults filled in now."""
    defaults = config.get_all()
    retries, default_timeout = defaults["max-retries"], defaults["job-timeout"]
    no_retry = defaults["no-retry-on"] or None
    now = ctx.clock.now()
    new_ids = iter(ctx.ids.many(sum(1 for spec in specs if spec.id is None)))
    rows = []
    for spec in specs:
        run_at = spec.run_at if spec.run_at is not None else now + (spec.delay or 0.0)
        timeout = spec.timeout if spec.timeout is not None else default_timeout
        created = now if spec.created_at is None else spec.created_at
        rows.append((spec.id or next(new_ids), spec.command,
                     (State.HELD if spec.hold else State.PENDING).value, 0,
                     retries if spec.max_retries is None else spec.max_retries,
                     spec.priority, run_at, float(timeout) if timeout else None, created,
                     created if spec.updated_at is None else spec.updated_at,
                     spec.cwd or default_cwd,
                     None if not spec.env else json.dumps(spec.env),
                     spec.queue or queues.DEFAULT, spec.schedule, spec.schedule_tick,
                     spec.unique_key, spec.unique_for,
                     no_retry if spec.no_retry_on is None else spec.no_retry_on or None,
                     spec.key, spec.cpus, spec.mem, spec.gpus, spec.progress_regex))
    return rows
