"""Unique jobs: while a job holding a key is unfinished (or finished less than its
`unique_for` ago), no second job with that key is enqueued.

The `unique_lock` table's primary key is the key itself, so the database decides
between two enqueues at the same instant: one insert wins, the other fails and
its enqueue adds nothing. A lock lapses at `until`; an enqueue first removes a
lapsed lock for its key, in its own transaction.

A requeued (or DLQ-retried) job takes its key again as an enqueue would, or is
refused naming the holder. A lock outlives a holder that was pruned before its
`unique_for` ran out (the window is the point: a nightly job stays once a
night whatever the retention), and still names it; a deleted holder's key is
free at once.
"""

from __future__ import annotations

from typing import Any

import peewee as pw

from queuectl_tui.clock import iso
from queuectl_tui.engine.storage.models import Job, UniqueLock
from queuectl_tui.errors import Conflict

HELD = 9.0e15  # `until` while the holder is unfinished: later than any real time


class Taken(Conflict):
    """The key is held: `job_id` is the job holding it; `pruned_until` is set
    when that job is gone (pruned) and its `unique_for` holds the key until then."""

    def __init__(self, key: str, job_id: str, *, doing: str = "enqueued",
                 pruned_until: float | None = None) -> None:
        holder = job_id if pruned_until is None else (
            f"{job_id} (finished and since pruned; its --unique-for holds the key until "
            f"{iso(pruned_until)})")
        hint = " (--if-absent answers with its id instead)" if doing == "enqueued" else ""
        super().__init__(f"a job with unique key {key!r} exists: {holder}; nothing was "
                         f"{doing}{hint}")
        self.key = key
        self.job_id = job_id
        self.pruned_until = pruned_until


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
        _take(db, key, job_id, now, "enqueued")


def take_again(db: pw.Database, job_id: str, key: str, now: float, doing: str) -> None:
    """A finished job runs again (requeue, DLQ retry): it takes its key as an
    enqueue would. Its own lock (still inside its `unique_for`) is its to take;
    another job's lock that has not lapsed refuses the move (Taken, exit 4)."""
    UniqueLock.delete().where(UniqueLock.key == key, UniqueLock.job_id == job_id).execute()
    _take(db, key, job_id, now, doing)


def _take(db: pw.Database, key: str, job_id: str, now: float, doing: str) -> None:
    UniqueLock.delete().where(UniqueLock.key == key, UniqueLock.until < now).execute()
    holder = UniqueLock.get_or_none(UniqueLock.key == key)
    if holder is not None:
        raise _taken(holder, doing)
    try:
        with db.atomic():  # a savepoint: PostgreSQL's transaction survives the error
            UniqueLock.insert(key=key, job_id=job_id, until=HELD).execute()
    except pw.IntegrityError:
        holder = UniqueLock.get_or_none(UniqueLock.key == key)
        raise (_taken(holder, doing) if holder else Taken(key, "another job", doing=doing)) \
            from None


def _taken(holder: UniqueLock, doing: str) -> Taken:
    """The refusal, saying so when the holder no longer exists (pruned)."""
    gone = not Job.select(Job.seq).where(Job.id == holder.job_id).exists()
    return Taken(holder.key, holder.job_id, doing=doing,
                 pruned_until=holder.until if gone else None)


def lock_of(key: str) -> UniqueLock | None:
    return UniqueLock.get_or_none(UniqueLock.key == key)


def release(job_id: str, key: str, unique_for: float | None, now: float) -> None:
    """The holder finished: the key lapses now, or `unique_for` seconds from now."""
    if unique_for:
        UniqueLock.update(until=now + unique_for).where(
            UniqueLock.key == key, UniqueLock.job_id == job_id).execute()
    else:
        UniqueLock.delete().where(UniqueLock.key == key, UniqueLock.job_id == job_id).execute()


def forget(job_ids: list[str]) -> None:
    """Keys held by jobs that were deleted: free at once."""
    for start in range(0, len(job_ids), 500):
        UniqueLock.delete().where(UniqueLock.job_id.in_(job_ids[start:start + 500])).execute()


def lapse(now: float) -> int:
    """Remove keys whose time ran out (the pruner calls this)."""
    return UniqueLock.delete().where(UniqueLock.until < now).execute()
