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
published, or an unsealed one whose writer died, is finished or removed by the
next worker that looks (`recover`, every second with the rescue scan).
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING, Iterator

import peewee as pw

from queuectl_tui.engine.models import Batch

if TYPE_CHECKING:
    from queuectl_tui.engine.queue import Queue

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
STALE_UNSEALED_S = 3600.0  # another host's unsealed batch this old: its writer is gone


def enqueue_staged(queue: Queue, rows: list[tuple], columns: tuple[str, ...],
                   given_ids: list[str]) -> list[str]:
    """Stage `rows` (in `columns` order, state 'pending') in slices, seal, publish;
    returns the jobs' ids as published.

    Ids the caller gave are checked once up front for a clear message, and a race
    with another enqueue is still caught by the unique index in the slice that
    meets it (then the batch is discarded)."""
    queue.refuse_taken_ids(given_ids)
    in_job = bool(given_ids)
    if in_job:
        state = columns.index("state")
        rows = [row[:state] + ("staged",) + row[state + 1:] for row in rows]
    else:
        rows = _distinct_ids(queue, rows)
    batch = os.urandom(8).hex()
    with queue.db.atomic():
        Batch.insert(id=batch, host=queue.host, pid=os.getpid(),
                     created_at=queue.clock.now()).execute()
    turns = _Turns(queue)
    try:
        for chunk in _chunks(rows, SLICE_ROWS):
            turns.start()
            with queue.db.atomic():
                if in_job:
                    queue.insert_job_rows(columns + ("batch",),
                                          [row + (batch,) for row in chunk])
                else:
                    queue.backend.insert_rows("staged_job", ("batch",) + columns,
                                              [(batch,) + row for row in chunk])
            turns.done()
        # A plain read, before the seal's transaction: it reads an index entry
        # per row (0.2-0.6 s at a million) and must not hold the lock meanwhile.
        taken = [] if in_job else _taken(queue, batch)
        with queue.db.atomic():  # the commit point
            renamed = _rename(queue, taken)
            Batch.update(sealed_at=queue.clock.now(), rows=len(rows)).where(
                Batch.id == batch).execute()
    except BaseException:
        discard(queue, batch)
        raise
    publish(queue, batch, columns=columns, renamed=renamed)
    return [renamed.get(row[0], row[0]) for row in rows]


def publish(queue: Queue, batch: str, max_slices: int | None = None,
            columns: tuple[str, ...] | None = None,
            renamed: dict[str, str] | None = None) -> bool:
    """Move a sealed batch's rows into `job` as `pending`, a slice per transaction,
    each with its events. Several processes may publish one batch at once: they
    share the work. True when it is all done. Ids this call had to rename go
    into `renamed` (old → new)."""
    from queuectl_tui.engine.queue import JOB_INSERT
    columns = columns or JOB_INSERT
    turns = _Turns(queue)
    for _ in itertools.count() if max_slices is None else range(max_slices):
        turns.start()
        try:
            with queue.db.atomic():
                now = queue.clock.now()
                moved = queue.backend.publish_staged(batch, columns, SLICE_ROWS, now) \
                    or _publish_in_job(queue, batch, now)
                if not moved:
                    Batch.delete().where(Batch.id == batch).execute()
                    return True
                queue.backend.notify()
        except pw.IntegrityError:  # a generated id was taken after the seal
            with queue.db.atomic():
                fixed = _rename(queue, _taken(queue, batch))
            if not fixed:
                raise
            _compose(renamed if renamed is not None else {}, fixed)
            continue
        if moved == SLICE_ROWS:  # a short slice was the last: no need to wait
            turns.done()
    return False


def _publish_in_job(queue: Queue, batch: str, now: float) -> int:
    """A slice of a batch staged in `job` (named ids): `staged` → `pending`."""
    p = queue.db.param
    ids = [row[0] for row in queue.db.execute_sql(
        f"UPDATE job SET state = 'pending', batch = NULL, updated_at = {p} "
        f"WHERE seq IN (SELECT seq FROM job WHERE batch = {p} AND state = 'staged' "
        f"ORDER BY seq LIMIT {SLICE_ROWS}) RETURNING id", (now, batch)).fetchall()]
    queue.backend.insert_rows("event", ("job_id", "to_state", "at", "attempt"),
                              [(job_id, "pending", now, 0) for job_id in ids])
    return len(ids)


def _distinct_ids(queue: Queue, rows: list[tuple]) -> list[tuple]:
    """Generated ids are 50 random bits: among a million, two may match."""
    if len({row[0] for row in rows}) == len(rows):  # the usual case, 10x faster than the loop
        return rows
    seen: set[str] = set()
    out = []
    for row in rows:
        job_id = row[0]
        while job_id in seen:
            job_id = queue.ids.new()
        seen.add(job_id)
        out.append(row if job_id == row[0] else (job_id,) + row[1:])
    return out


def _taken(queue: Queue, batch: str) -> list[tuple[int, str]]:
    """The batch's staged rows (seq, id) whose generated id a job already has."""
    p = queue.db.param
    return queue.db.execute_sql(
        f"SELECT s.seq, s.id FROM staged_job s JOIN job j ON j.id = s.id "
        f"WHERE s.batch = {p}", (batch,)).fetchall()


def _rename(queue: Queue, taken: list[tuple[int, str]]) -> dict[str, str]:
    """Give these staged rows a new id that neither a job nor a staged row has
    (inside the caller's transaction): at the seal (about once in 10,000 bulk
    enqueues) and at publish after the unique index refused a slice. A rename
    made by another process publishing the same batch is not in this process's
    `renamed`: its printed ids then miss that one (DECISIONS.md)."""
    p = queue.db.param
    renamed: dict[str, str] = {}
    for seq, old in taken:
        new = queue.ids.new()
        while queue.db.execute_sql(
                f"SELECT 1 FROM job WHERE id = {p} UNION ALL "
                f"SELECT 1 FROM staged_job WHERE id = {p}", (new, new)).fetchone():
            new = queue.ids.new()
        queue.db.execute_sql(f"UPDATE staged_job SET id = {p} WHERE seq = {p}", (new, seq))
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

    def __init__(self, queue: Queue) -> None:
        self.clock = queue.clock
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


def discard(queue: Queue, batch: str) -> None:
    """Remove an unsealed batch whole: its staged rows, then the batch itself."""
    p = queue.db.param
    while True:
        with queue.db.atomic():
            gone = queue.db.execute_sql(
                f"DELETE FROM staged_job WHERE seq IN (SELECT seq FROM staged_job "
                f"WHERE batch = {p} LIMIT {SLICE_ROWS})", (batch,)).rowcount
            gone += queue.db.execute_sql(
                f"DELETE FROM job WHERE seq IN (SELECT seq FROM job WHERE batch = {p} "
                f"AND state = 'staged' LIMIT {SLICE_ROWS})", (batch,)).rowcount
            if gone == 0:
                Batch.delete().where(Batch.id == batch, Batch.sealed_at.is_null()).execute()
                return


def recover(queue: Queue, max_slices: int = 5) -> None:
    """Finish what dead bulk enqueues left: publish sealed batches, remove unsealed
    ones whose writer is gone. Cheap when there is nothing (one tiny SELECT)."""
    for batch in list(Batch.select()):
        if batch.sealed_at is not None:
            publish(queue, batch.id, max_slices)
        elif _writer_gone(queue, batch):
            discard(queue, batch.id)


def _writer_gone(queue: Queue, batch: Batch) -> bool:
    if batch.host != queue.host:
        return queue.clock.now() - batch.created_at > STALE_UNSEALED_S
    if batch.pid == os.getpid():
        return False
    try:
        os.kill(batch.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return queue.clock.now() - batch.created_at > STALE_UNSEALED_S  # pid reused?


def _chunks(rows: list[tuple], size: int) -> Iterator[list[tuple]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]
