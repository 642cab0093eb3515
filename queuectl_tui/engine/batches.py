"""Big enqueues that stay all or nothing without holding the write lock for long.

A bulk enqueue of a million lines used to be one transaction: every worker and
every other writer waited for it (seconds), and a long wait for the lock looks
like a dead worker to a rescuer. Instead its rows are written in slices, in the
state `staged`, which nothing claims, lists or counts; then the batch is sealed
in one small transaction (the commit point: from then on the enqueue is durable
and will be published even if its process dies); then the rows are published,
slice by slice, `staged` → `pending` with their events.

If anything fails before the seal (a bad row found late, a full disk, Ctrl+C),
the staged rows are removed and nothing was enqueued. A sealed batch left half
published, or an unsealed one whose writer died, is finished or removed by the
next worker that looks (`recover`, every second with the rescue scan).
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING, Iterator

from queuectl_tui.engine.models import Batch, Job

if TYPE_CHECKING:
    from queuectl_tui.engine.queue import Queue

SLICE_ROWS = 20_000  # about 0.2-0.4 s of writing: the longest the lock is held
# Between slices the lock is left free for a moment. Without it the next slice
# takes the lock back within microseconds and other writers starve: measured, a
# worker's throughput fell to a quarter during a bulk enqueue, and a probe
# waited 2.5 s. queuectl's own writers wait on the writers' flock
# (writer_lock.py) and are woken by the commit, so a few milliseconds let them
# in; every LONG_EVERY-th pause is long enough for a writer asleep in SQLite's
# busy handler (up to 100 ms between tries: another thread, another program).
YIELD_S = 0.003
LONG_YIELD_S = 0.1
LONG_EVERY = 4
STALE_UNSEALED_S = 3600.0  # another host's unsealed batch this old: its writer is gone


def enqueue_staged(queue: Queue, rows: list[tuple], columns: tuple[str, ...],
                   given_ids: list[str]) -> None:
    """Stage `rows` (JOB_INSERT order, state already 'staged') in slices, seal, publish.

    Ids the caller gave are checked once up front for a clear message; generated
    ids need no check, and a race with another enqueue is still caught by the
    unique index in the slice that meets it (then the batch is discarded)."""
    queue.refuse_taken_ids(given_ids)
    batch = os.urandom(8).hex()
    with queue.db.atomic():
        Batch.insert(id=batch, host=queue.host, pid=os.getpid(),
                     created_at=queue.clock.now()).execute()
    try:
        for n, chunk in enumerate(_chunks(rows, SLICE_ROWS), 1):
            with queue.db.atomic():
                queue.insert_job_rows(columns + ("batch",), [row + (batch,) for row in chunk])
            _yield(queue, n)
        with queue.db.atomic():  # the commit point
            Batch.update(sealed_at=queue.clock.now(), rows=len(rows)).where(
                Batch.id == batch).execute()
    except BaseException:
        discard(queue, batch)
        raise
    publish(queue, batch)


def publish(queue: Queue, batch: str, max_slices: int | None = None) -> bool:
    """Move a sealed batch's rows to `pending`, a slice per transaction, each with
    its events. Several processes may publish one batch at once: each update is
    conditioned on `staged`, so they share the work. True when it is all done."""
    p = queue.db.param
    for n in itertools.count(1) if max_slices is None else range(1, max_slices + 1):
        with queue.db.atomic():
            now = queue.clock.now()
            ids = [row[0] for row in queue.db.execute_sql(
                f"UPDATE job SET state = 'pending', batch = NULL, updated_at = {p} "
                f"WHERE seq IN (SELECT seq FROM job WHERE batch = {p} AND state = 'staged' "
                f"ORDER BY seq LIMIT {SLICE_ROWS}) RETURNING id", (now, batch)).fetchall()]
            if not ids:
                Batch.delete().where(Batch.id == batch).execute()
                return True
            queue.backend.insert_rows("event", ("job_id", "to_state", "at", "attempt"),
                                      [(job_id, "pending", now, 0) for job_id in ids])
            queue.backend.notify()
        _yield(queue, n)
    return False


def _yield(queue: Queue, slices: int) -> None:
    """Leave the write lock free between slices (see YIELD_S)."""
    queue.clock.sleep(LONG_YIELD_S if slices % LONG_EVERY == 0 else YIELD_S)


def discard(queue: Queue, batch: str) -> None:
    """Remove an unsealed batch whole: its staged rows, then the batch itself."""
    p = queue.db.param
    while True:
        with queue.db.atomic():
            gone = queue.db.execute_sql(
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
