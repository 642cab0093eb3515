"""Unique jobs: while a job holding a key is unfinished (or finished less than its
`unique_for` ago), no second job with that key is enqueued.

The `unique_lock` table's primary key is the key itself, so the database decides
between two enqueues at the same instant: one insert wins, the other fails and
its enqueue adds nothing. A lock lapses at `until`; an enqueue first removes a
lapsed lock for its key, in its own transaction.
"""

from __future__ import annotations

from typing import Any

import peewee as pw

from queuectl_tui.engine.models import UniqueLock
from queuectl_tui.errors import Conflict

HELD = 9.0e15  # `until` while the holder is unfinished: later than any real time


class Taken(Conflict):
    """The key is held: `job_id` is the job holding it."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(f"a job with unique key {key!r} exists: {job_id}; nothing was "
                         "enqueued (--if-absent answers with its id instead)")
        self.key = key
        self.job_id = job_id


def take(db: pw.Database, specs: list[Any], ids: list[str], now: float) -> None:
    """Inside the enqueue's transaction: take every key the batch names."""
    seen: dict[str, str] = {}
    for spec, job_id in zip(specs, ids):
        key = spec.unique_key
        if key is None:
            continue
        if key in seen:
            raise Taken(key, seen[key])
        seen[key] = job_id
        UniqueLock.delete().where(UniqueLock.key == key, UniqueLock.until < now).execute()
        holder = UniqueLock.get_or_none(UniqueLock.key == key)
        if holder is not None:
            raise Taken(key, holder.job_id)
        try:
            with db.atomic():  # a savepoint: PostgreSQL's transaction survives the error
                UniqueLock.insert(key=key, job_id=job_id, until=HELD).execute()
        except pw.IntegrityError:
            raise Taken(key, holder_of(key) or "another job") from None


def holder_of(key: str) -> str | None:
    row = UniqueLock.get_or_none(UniqueLock.key == key)
    return row.job_id if row else None


def release(job_id: str, key: str, unique_for: float | None, now: float) -> None:
    """The holder finished: the key lapses now, or `unique_for` seconds from now."""
    if unique_for:
        UniqueLock.update(until=now + unique_for).where(
            UniqueLock.key == key, UniqueLock.job_id == job_id).execute()
    else:
        UniqueLock.delete().where(UniqueLock.key == key, UniqueLock.job_id == job_id).execute()


def hold_again(job_id: str, key: str) -> None:
    """A finished job runs again (requeue, DLQ retry): it holds its key again if
    nobody else took it meanwhile."""
    UniqueLock.insert(key=key, job_id=job_id, until=HELD).on_conflict_ignore().execute()
    UniqueLock.update(until=HELD).where(UniqueLock.key == key,
                                        UniqueLock.job_id == job_id).execute()


def forget(job_ids: list[str]) -> None:
    """Keys held by jobs that were deleted: free at once."""
    for start in range(0, len(job_ids), 500):
        UniqueLock.delete().where(UniqueLock.job_id.in_(job_ids[start:start + 500])).execute()


def lapse(now: float) -> int:
    """Remove keys whose time ran out (the pruner calls this)."""
    return UniqueLock.delete().where(UniqueLock.until < now).execute()
