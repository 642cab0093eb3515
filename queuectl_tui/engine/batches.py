"""Big enqueues that stay all or nothing without holding the write lock for long.

A bulk enqueue of a million lines used to be one transaction: every worker and
every other writer waited for it (seconds), and a long wait for the lock looks
like a dead worker to a rescuer. Instead its rows are written in slices, in the
table `staged_job`, which nothing claims, lists or counts; then the batch is
sealed in one small transaction (the commit point: from then on the enqueue is
durable and will be published even if its process dies); then the rows are
published, slice by slice, moved into `job` as `pending` with their events.

The staging table has no index but its key, so each row meets job's eight
indexes once, at publish (measured: a third less time than staging in `job`
and updating every row). A file that names its ids stages in `job` itself, in
the state `staged`, where the unique index settles a race for a named id
before the commit point; generated ids are looked up in `job` just before the
seal, as a plain read (the seal renames the ones found), and in the rare case
one is taken after that look, renamed at publish.

If anything fails before the seal (a bad row found late, a full disk, Ctrl+C),
the staged rows are removed and nothing was enqueued. A sealed batch left half
published is finished by the next worker that looks (`recover`, every second
with the rescue scan). An unsealed one whose writer died (its lock is free:
batch_owner.py) is removed by that worker, or at once by the next enqueue that
meets one of its ids. Two enqueues racing for a named id settle it by age: the
one that started later gives way (`_settle`).
"""

from __future__ import annotations

import itertools
import os
from typing import Iterator

import peewee as pw

from queuectl_tui.engine import batch_owner
from queuectl_tui.engine.storage.columns import JOB_INSERT
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.storage.models import Batch, Job
from queuectl_tui.engine.states import State
from queuectl_tui.errors import Conflict

SLICE_ROWS = 20_000  # about 0.1-0.4 s of writing: the longest the lock is held
# Between slices the lock is left free for a moment. Without it the next slice
# takes the lock back within microseconds and other writers starve: measured, a
# worker's throughput fell to a quarter during a bulk enqueue, and a probe
# waited 2.5 s. queuectl's own writers wait on the writers' flock
# (writer_lock.py) and are woken by the commit, so a few milliseconds let them
# in; once per LONG_AFTER_S of holding the lock the pause is long enough for a
# writer asleep in SQLite's busy handler (up to 100 ms between tries: another
# thread, another program), well inside its usual 5 s timeout.
YIELD_S = 0.003
LONG_YIELD_S = 0.1
LONG_AFTER_S = 1.0
DISCARDED = -1  # Batch.rows of an unsealed batch being removed: its seal must fail
RACE_WAIT_S = 600.0  # the longest a bulk enqueue waits for a younger one holding its ids
RACE_POLL_S = 0.05


def enqueue_staged(ctx: Context, rows: list[tuple], columns: tuple[str, ...],
                   given_ids: list[str]) -> list[str]:
    """Stage `rows` (in `columns` order, state 'pending' or 'held') in slices, seal, publish;
    returns the jobs' ids as published.

    Ids the caller gave are checked once up front for a clear message (rows a
    dead bulk enqueue left are cleared then), and a race with another enqueue is
    still caught by the unique index in the slice that meets it: see `_settle`."""
    in_job = bool(given_ids)
    if in_job:
        free_ids(ctx, given_ids, publish_sealed=True)
        # Staged in `job` itself: the state it is published in (pending, or held)
        # waits in prev_state, which nothing else reads before a claim.
        state = columns.index("state")
        rows = [row[:state] + (State.STAGED.value,) + row[state + 1:] + (row[state],)
                for row in rows]
    else:
        rows = _distinct_ids(ctx, rows)
    batch = os.urandom(8).hex()
    batch_owner.hold(ctx, batch)  # from before the batch exists: see batch_owner.py
    try:
        with ctx.db.atomic():
            me = Batch.create(id=batch, host=ctx.host, pid=os.getpid(),
                              created_at=ctx.clock.now())
        renamed = _stage_and_seal(ctx, me, rows, columns, in_job)
        publish(ctx, batch, columns=columns, renamed=renamed)
    finally:
        batch_owner.let_go(ctx, batch)
    return [renamed.get(row[0], row[0]) for row in rows]


def _stage_and_seal(ctx: Context, me: Batch, rows: list[tuple], columns: tuple[str, ...],
                    in_job: bool) -> dict[str, str]:
    """Write the slices and seal them; on any failure remove them (nothing was
    enqueued). Returns the generated ids the seal had to rename."""
    batch = me.id
    turns = _Turns(ctx)
    try:
        for chunk in _chunks(rows, SLICE_ROWS):
            turns.start()
            if in_job:
                _stage_named(ctx, me, columns + ("prev_state", "batch"),
                             [row + (batch,) for row in chunk])
            else:
                with ctx.db.atomic():
                    ctx.backend.insert_rows("staged_job", ("batch",) + columns,
                                              [(batch,) + row for row in chunk])
            turns.done()
        # A plain read, before the seal's transaction: it reads an index entry
        # per row (0.2-0.6 s at a million) and must not hold the lock meanwhile.
        taken = [] if in_job else _taken(ctx, batch)
        with ctx.db.atomic():  # the commit point
            renamed = _rename(ctx, taken)
            sealed = Batch.update(sealed_at=ctx.clock.now(), rows=len(rows)).where(
                Batch.id == batch, Batch.sealed_at.is_null(), Batch.rows >= 0).execute()
            if sealed != 1:  # another process judged us gone and is removing the batch
                raise Conflict("this bulk enqueue was cleared by another process that "
                               "found its writer gone; nothing was enqueued")
    except BaseException:
        discard(ctx, batch)
        raise
    return renamed


def _stage_named(ctx: Context, me: Batch, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """One slice of named ids into `job`, in its own transaction; an id another
    enqueue holds is settled by `_settle` (which may refuse the whole file)."""
    ids = [row[0] for row in rows]
    waited_since = None
    while True:
        try:
            with ctx.db.atomic():
                ctx.backend.insert_rows("job", columns, rows)
            return
        except pw.IntegrityError:
            pass
        except pw.OperationalError as exc:  # PostgreSQL: two slices waiting on each other
            if "deadlock" not in str(exc).lower():
                raise
        if _settle(ctx, ids, me):
            waited_since = None
            continue
        now = ctx.clock.monotonic()
        waited_since = now if waited_since is None else waited_since
        if now - waited_since > RACE_WAIT_S:
            raise Conflict(f"ids of this file are still being enqueued by another bulk "
                           f"enqueue after {RACE_WAIT_S:g} s; nothing was enqueued")
        ctx.clock.sleep(RACE_POLL_S)


def free_ids(ctx: Context, ids: list[str], *, publish_sealed: bool = False) -> None:
    """Refuse ids a job already has (Conflict), after clearing any that only rows
    of a dead bulk enqueue hold. With `publish_sealed`, a sealed batch holding
    one is published first, so the refusal names a job `show` can find."""
    for chunk in _chunks(ids, 500):
        while True:
            holder = Job.select(Job.id, Job.state, Job.batch).where(Job.id.in_(chunk)).first()
            if holder is None:
                break
            if holder.state != State.STAGED:
                raise Conflict(f"a job with id {holder.id!r} already exists; "
                               "nothing was enqueued")
            verdict = _verdict(ctx, holder.batch, None)
            if verdict == "sealed" and publish_sealed:
                publish(ctx, holder.batch)
            if verdict != "cleared":
                raise Conflict(_held_by(holder.id, verdict))


def _settle(ctx: Context, ids: list[str], me: Batch) -> bool:
    """A slice of ours met ids held by others. True when something was cleared
    (try again now); False to wait for an unsealed batch that started after
    ours (it gives way when it meets our rows); Conflict when we lose: to a
    job, a sealed batch, or an unsealed one that started first. So two bulk
    enqueues racing for the same ids end with exactly one winner."""
    p = ctx.db.param
    wait = False
    for chunk in _chunks(ids, 500):
        holders = ctx.db.execute_sql(
            f"SELECT id, state, batch FROM job WHERE id IN ({', '.join([p] * len(chunk))}) "
            f"AND (batch IS NULL OR batch <> {p})", (*chunk, me.id)).fetchall()
        for job_id, state, batch in holders:
            if state != State.STAGED:
                raise Conflict(f"a job with id {job_id!r} already exists; nothing was enqueued")
            verdict = _verdict(ctx, batch, me)
            if verdict == "cleared":
                return True
            if verdict != "younger":
                raise Conflict(_held_by(job_id, verdict))
            wait = True
    return not wait  # nothing held any more (the holder gave way meanwhile): try again


def _verdict(ctx: Context, batch: str, me: Batch | None) -> str:
    """What to do about a row staged by `batch`: 'cleared' (its writer was gone:
    removed now), 'sealed' (it will be published: the id is taken), 'older' or
    'younger' (a live writer that started before or after `me`)."""
    other = Batch.get_or_none(Batch.id == batch)
    if other is not None and other.sealed_at is not None:
        return "sealed"
    if other is None or other.rows == DISCARDED:
        discard(ctx, batch)  # left over from a clearing that did not finish
        return "cleared"
    with batch_owner.if_abandoned(ctx, batch) as abandoned:
        if abandoned:
            discard(ctx, batch)
            return "cleared"
    if me is not None and (other.created_at, other.id) > (me.created_at, me.id):
        return "younger"
    return "older"


def _held_by(job_id: str, verdict: str) -> str:
    if verdict == "sealed":
        return (f"a job with id {job_id!r} already exists (a bulk enqueue is publishing "
                "it); nothing was enqueued")
    return (f"id {job_id!r} is being enqueued by another bulk enqueue in progress; "
            "nothing was enqueued")


def publish(ctx: Context, batch: str, max_slices: int | None = None,
            columns: tuple[str, ...] | None = None,
            renamed: dict[str, str] | None = None) -> bool:
    """Move a sealed batch's rows into `job` as `pending` (or `held`: enqueued
    --hold), a slice per transaction,
    each with its events. Several processes may publish one batch at once: they
    share the work. True when it is all done. Ids this call had to rename go
    into `renamed` (old → new)."""
    columns = columns or JOB_INSERT
    turns = _Turns(ctx)
    for _ in itertools.count() if max_slices is None else range(max_slices):
        turns.start()
        try:
            with ctx.db.atomic():
                now = ctx.clock.now()
                moved = ctx.backend.publish_staged(batch, columns, SLICE_ROWS, now) \
                    or _publish_in_job(ctx, batch, now)
                if not moved:
                    Batch.delete().where(Batch.id == batch).execute()
                    return True
                ctx.backend.notify()
        except pw.IntegrityError:  # a generated id was taken after the seal
            with ctx.db.atomic():
                fixed = _rename(ctx, _taken(ctx, batch))
            if not fixed:
                raise
            _compose(renamed if renamed is not None else {}, fixed)
            continue
        if moved == SLICE_ROWS:  # a short slice was the last: no need to wait
            turns.done()
    return False


def _publish_in_job(ctx: Context, batch: str, now: float) -> int:
    """A slice of a batch staged in `job` (named ids): `staged` → `pending`, or
    `held` (the state it was staged for, kept in prev_state)."""
    p = ctx.db.param
    moved = ctx.db.execute_sql(
        f"UPDATE job SET state = CASE WHEN prev_state = '{State.HELD.value}' "
        f"THEN '{State.HELD.value}' ELSE '{State.PENDING.value}' END, prev_state = NULL, "
        f"batch = NULL, updated_at = {p} "
        f"WHERE seq IN (SELECT seq FROM job WHERE batch = {p} AND state = '{State.STAGED.value}' "
        f"ORDER BY seq LIMIT {SLICE_ROWS}) RETURNING id, state", (now, batch)).fetchall()
    ctx.backend.insert_rows("event", ("job_id", "to_state", "at", "attempt"),
                              [(job_id, state, now, 0) for job_id, state in moved])
    return len(moved)


def _distinct_ids(ctx: Context, rows: list[tuple]) -> list[tuple]:
    """Generated ids are 50 random bits: among a million, two may match."""
    if len({row[0] for row in rows}) == len(rows):  # the usual case, 10x faster than the loop
        return rows
    seen: set[str] = set()
    out = []
    for row in rows:
        job_id = row[0]
        while job_id in seen:
            job_id = ctx.ids.new()
        seen.add(job_id)
        out.append(row if job_id == row[0] else (job_id,) + row[1:])
    return out


def _taken(ctx: Context, batch: str) -> list[tuple[int, str]]:
    """The batch's staged rows (seq, id) whose generated id a job already has."""
    p = ctx.db.param
    return ctx.db.execute_sql(
        f"SELECT s.seq, s.id FROM staged_job s JOIN job j ON j.id = s.id "
        f"WHERE s.batch = {p}", (batch,)).fetchall()


def _rename(ctx: Context, taken: list[tuple[int, str]]) -> dict[str, str]:
    """Give these staged rows a new id that neither a job nor a staged row has
    (inside the caller's transaction): at the seal (about once in 10,000 bulk
    enqueues) and at publish after the unique index refused a slice. A rename
    made by another process publishing the same batch is not in this process's
    `renamed`: its printed ids then miss that one (DECISIONS.md)."""
    p = ctx.db.param
    renamed: dict[str, str] = {}
    for seq, old in taken:
        new = ctx.ids.new()
        while ctx.db.execute_sql(
                f"SELECT 1 FROM job WHERE id = {p} UNION ALL "
                f"SELECT 1 FROM staged_job WHERE id = {p}", (new, new)).fetchone():
            new = ctx.ids.new()
        ctx.db.execute_sql(f"UPDATE staged_job SET id = {p} WHERE seq = {p}", (new, seq))
        renamed[old] = new
    return renamed


def _compose(renamed: dict[str, str], more: dict[str, str]) -> None:
    """Add renames to `renamed` (first id → latest): an id renamed at the seal
    may be renamed again at publish."""
    latest = {new: old for old, new in renamed.items()}
    for old, new in more.items():
        renamed[latest.get(old, old)] = new


class _Turns:
    """Leaves the write lock free between slices (see YIELD_S)."""

    def __init__(self, ctx: Context) -> None:
        self.clock = ctx.clock
        self.held = 0.0
        self.since = self.clock.monotonic()

    def start(self) -> None:
        self.since = self.clock.monotonic()

    def done(self) -> None:
        self.held += self.clock.monotonic() - self.since
        long = self.held >= LONG_AFTER_S
        if long:
            self.held = 0.0
        self.clock.sleep(LONG_YIELD_S if long else YIELD_S)


def discard(ctx: Context, batch: str) -> None:
    """Remove an unsealed batch whole: mark it (so its seal fails, should its
    writer still be at work), then its staged rows, then the batch itself. A
    sealed batch is never touched: it is committed and will be published."""
    p = ctx.db.param
    with ctx.db.atomic():
        marked = Batch.update(rows=DISCARDED).where(
            Batch.id == batch, Batch.sealed_at.is_null()).execute()
        if not marked and Batch.select().where(Batch.id == batch).exists():
            return  # sealed meanwhile
    while True:
        with ctx.db.atomic():
            gone = ctx.db.execute_sql(
                f"DELETE FROM staged_job WHERE seq IN (SELECT seq FROM staged_job "
                f"WHERE batch = {p} LIMIT {SLICE_ROWS})", (batch,)).rowcount
            gone += ctx.db.execute_sql(
                f"DELETE FROM job WHERE seq IN (SELECT seq FROM job WHERE batch = {p} "
                f"AND state = '{State.STAGED.value}' LIMIT {SLICE_ROWS})", (batch,)).rowcount
            if gone == 0:
                Batch.delete().where(Batch.id == batch, Batch.sealed_at.is_null()).execute()
                return


def recover(ctx: Context, max_slices: int = 5) -> None:
    """Finish what dead bulk enqueues left: publish sealed batches, remove unsealed
    ones whose writer is gone (its lock is free: batch_owner.py). Cheap when
    there is nothing (one tiny SELECT)."""
    for batch in list(Batch.select()):
        if batch.sealed_at is not None:
            publish(ctx, batch.id, max_slices)
        elif batch.rows == DISCARDED:
            discard(ctx, batch.id)
        else:
            with batch_owner.if_abandoned(ctx, batch.id) as abandoned:
                if abandoned:
                    discard(ctx, batch.id)


def _chunks(rows: list[tuple], size: int) -> Iterator[list[tuple]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]
