"""Jobs per state at any size: a stored count, followed through the event log.

`GROUP BY state` reads every job: 35-60 ms at a million on a quiet machine,
several times that while workers write, for `status` and for each console that
opens. But every state change writes an event in the transaction that makes
it, and SQLite commits one writer at a time, so event seqs are in commit
order: a count read in the same snapshot as the newest event's seq, plus the
moves of the events after it, is the count now. Whoever makes a count stores it
in `meta` (the supervisor refreshes it every few seconds), so the next reader
follows a few thousand events instead of recounting a million rows.

Two things leave without an event, and both are tracked: a job retention
prunes (the per-state `pruned.` counters, kept in retention's transaction) and
the pruned job's own events, which go with it (`events.pruned_through`, the
newest event seq it ever deleted: a count older than that cannot be followed
and is made again).
A count older than MAX_AGE_S is made again too, which bounds the harm of any
path that might change a job without an event.

PostgreSQL's sequence values are handed out before commit, not in commit
order, so there every count is a full one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import peewee as pw

from queuectl_tui.engine.states import STATES
from queuectl_tui.engine.storage.models import Event, Job, Meta

if TYPE_CHECKING:
    from queuectl_tui.engine.context import Store

BASELINE_KEY = "counts.baseline"
PRUNED_KEY = "pruned."  # + state: how many jobs of that state were ever pruned
PRUNED_EVENTS_KEY = "events.pruned_through"  # the newest event seq pruning ever deleted
MAX_AGE_S = 3600.0  # a stored count older than this (by the queue's clock) is made again
MAX_MOVES = 100_000  # more events than this since the count: counting again is cheaper
STORE_AFTER_MOVES = 2_000  # a reader that followed this many stores what it found


@dataclass(frozen=True)
class Baseline:
    """Jobs per state as of event `event_seq` (None: not followable, PostgreSQL),
    with retention's `pruned` counters read in the same snapshot and `counted_at`
    the queue-clock time of the full count it descends from."""

    counts: dict[str, int]
    event_seq: int | None
    pruned: dict[str, int]
    counted_at: float = 0.0


def count_states(queue_name: str | None = None) -> dict[str, int]:
    """The full count: every state, 0 where none. `COUNT(*)` over the (state,
    seq) index, a third cheaper than counting a column."""
    found = {state: 0 for state in STATES}
    query = Job.select(Job.state, pw.fn.COUNT(pw.SQL("*")))
    if queue_name is not None:
        query = query.where(Job.queue == queue_name)
    for state, n in query.group_by(Job.state).tuples():
        if state in found:  # not `staged`: a bulk enqueue still being written
            found[state] = n
    return found


def full(handle: Store) -> Baseline:
    """Count every state now (any thread, any connection of this database)."""
    now = handle.clock.now()
    if not followable(handle):
        return Baseline(count_states(), None, {}, now)
    with handle.db.atomic("DEFERRED"):  # one read snapshot for every statement
        seq = Event.select(pw.fn.MAX(Event.seq)).scalar() or 0
        return Baseline(count_states(), seq, pruned_so_far(), now)


def follow(handle: Store, base: Baseline,
           max_moves: int | None = MAX_MOVES) -> tuple[Baseline, int] | None:
    """`base` brought up to date, and how many events that read; None when it
    cannot be (events it needs were pruned, or more than `max_moves` happened)."""
    if base.event_seq is None:
        return None
    with handle.db.atomic("DEFERRED"):  # the counters and the events in one snapshot
        if pruned_through() > base.event_seq:
            return None
        moves = list(Event.select(Event.from_state, Event.to_state, pw.fn.COUNT(pw.SQL("*")),
                                  pw.fn.MAX(Event.seq))
                     .where(Event.seq > base.event_seq)
                     .group_by(Event.from_state, Event.to_state).tuples())
        moved = sum(n for _, _, n, _ in moves)
        if max_moves is not None and moved > max_moves:
            return None
        pruned = pruned_so_far()
    counts = dict(base.counts)
    for state, total in pruned.items():  # jobs that left without an event
        if state in counts:
            counts[state] -= total - base.pruned.get(state, 0)
    seq = base.event_seq
    for from_state, to_state, n, last in moves:
        if from_state in counts:
            counts[from_state] -= n
        if to_state in counts:
            counts[to_state] += n
        seq = max(seq, last)
    return Baseline(counts, seq, pruned, base.counted_at), moved


def fresh(handle: Store) -> Baseline:
    """Jobs per state now, the cheap way when it can be: the stored count
    followed, else a full count, which is then stored for the next reader."""
    if not followable(handle):
        return full(handle)
    base = stored()
    if base is not None and 0 <= handle.clock.now() - base.counted_at < MAX_AGE_S:
        found = follow(handle, base)
        if found is not None:
            if found[1] >= STORE_AFTER_MOVES:
                store(handle, found[0])
            return found[0]
    base = full(handle)
    store(handle, base)
    return base


def refresh_stored(handle: Store) -> None:
    """Store the count as of now (the supervisor, every few seconds), so that
    readers follow only the events since."""
    if followable(handle):
        base = fresh(handle)
        if base.event_seq != (stored() or base).event_seq:
            store(handle, base)


def current(handle: Store) -> dict[str, int]:
    """`fresh`'s counts, for those that want only them (`status`)."""
    return dict(fresh(handle).counts)


def followable(handle: Store) -> bool:
    return handle.backend.name == "sqlite"


def stored() -> Baseline | None:
    row = Meta.get_or_none(Meta.key == BASELINE_KEY)
    if row is None:
        return None
    try:
        data = json.loads(row.value)
        return Baseline({s: int(data["counts"].get(s, 0)) for s in STATES},
                        int(data["event_seq"]),
                        {k: int(v) for k, v in data["pruned"].items()},
                        float(data["counted_at"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # written by something else: count again, and overwrite it


def store(handle: Store, base: Baseline) -> bool:
    """Keep `base` for the next reader if the write lock is free right now.
    A reader must never wait for a writer over this: it is only a saving."""
    if base.event_seq is None:
        return False
    value = json.dumps({"counts": base.counts, "event_seq": base.event_seq,
                        "pruned": base.pruned, "counted_at": base.counted_at})
    return handle.backend.try_write(
        lambda: Meta.insert(key=BASELINE_KEY, value=value)
        .on_conflict(conflict_target=[Meta.key], update={Meta.value: value}).execute())


def count_pruned(db: pw.Database, state: str, n: int) -> None:
    """In retention's transaction: a pruned job leaves no event, so readers
    that follow the event log learn of it here."""
    key = PRUNED_KEY + state
    Meta.insert(key=key, value="0").on_conflict_ignore().execute()
    p = db.param
    db.execute_sql(f"UPDATE meta SET value = CAST(CAST(value AS BIGINT) + {p} AS TEXT) "
                   f"WHERE key = {p}", (n, key))


def pruned_so_far() -> dict[str, int]:
    return {row.key[len(PRUNED_KEY):]: int(row.value) for row in
            Meta.select().where(Meta.key.startswith(PRUNED_KEY))}


def pruned_through() -> int:
    row = Meta.get_or_none(Meta.key == PRUNED_EVENTS_KEY)
    return int(row.value) if row is not None else 0


def note_pruned_events(db: pw.Database, job_ids: list[str]) -> None:
    """Before their events are deleted: remember the newest of them (in the
    caller's transaction), so that no count older than that is followed: it
    would miss these moves."""
    marks = ", ".join([db.param] * len(job_ids))
    newest = db.execute_sql(f"SELECT MAX(seq) FROM event WHERE job_id IN ({marks})",
                            job_ids).fetchone()[0]
    if newest is None or newest <= pruned_through():
        return
    Meta.insert(key=PRUNED_EVENTS_KEY, value=str(newest)).on_conflict(
        conflict_target=[Meta.key], update={Meta.value: str(newest)}).execute()
