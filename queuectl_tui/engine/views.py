"""Read-only queries the console needs: keyset windows of jobs and events, throughput.

Nothing here changes a row. Every list is a *window* around an anchor (the
sort key of one row), fetched with keyset conditions, so the cost of a screen
does not grow with the size of the queue: the console never counts or skips
rows to find a page. No Textual here; the console calls these from its
database thread and formats the plain dicts they return.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import peewee as pw

from queuectl_tui.engine import counts, logs
from queuectl_tui.engine.storage.columns import ROW_FIELDS
from queuectl_tui.engine.context import Store
from queuectl_tui.engine.storage.opened import Opened
from queuectl_tui.engine.storage.models import AuditEntry, Event, Job
from queuectl_tui.engine.states import CLAIMABLE, ENDED_BADLY, State

# Finishing moves: a run ended (well or not). Counted by the throughput sparkline,
# from `processing` only: an edit of a retrying job is a `failed` -> `failed` event.
FINISHED = (State.COMPLETED, *ENDED_BADLY)

# Sort name -> ((column, descending), ...) in display order. Keyset paging needs
# NOT NULL columns ending in a unique one, and an index serving the order: "age"
# walks the primary key (or (state, seq) within states); "run" is the claim order,
# served by the partial claim index, so it lists waiting jobs only.
JOB_SORTS: dict[str, tuple[tuple[pw.Field, bool], ...]] = {
    "age": ((Job.seq, True),),
    "run": ((Job.priority, True), (Job.run_at, False), (Job.seq, False)),
}
WAITING = CLAIMABLE  # what the "run" order lists: jobs that will run

START = None  # anchor: the first row in display order
END = "end"   # anchor: the last row in display order


@dataclass(frozen=True)
class JobQuery:
    """Which jobs a list shows and in what order. Empty tuples mean 'any'.

    Terms of one kind are alternatives (state:pending state:failed = either);
    different kinds must all hold. `text` matches an id prefix or the command.
    """

    states: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()  # exact names
    schedules: tuple[str, ...] = ()  # exact names: the jobs these schedules made
    keys: tuple[str, ...] = ()  # exact job keys (enqueue --key)
    since: float | None = None  # seconds: jobs created within this long before `now`
    sort: str = "age"
    descending: bool = True

    def key_of(self, row: dict[str, Any]) -> tuple:
        """The keyset anchor of a row returned for this query."""
        return tuple(row[col.name] for col, _ in _order(self.sort, self.descending))

    @property
    def has_text(self) -> bool:
        return bool(self.ids or self.commands or self.workers or self.text or self.queues
                    or self.schedules or self.keys or self.since is not None)


@dataclass(frozen=True)
class EventQuery:
    """Which events History shows (always newest first)."""

    job_ids: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()
    text: tuple[str, ...] = ()

    def key_of(self, row: dict[str, Any]) -> tuple:
        return (row["seq"],)


@dataclass
class Window:
    """Rows around an anchor, in display order; `at` is the anchor row's index."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    at: int = 0
    more_before: bool = False
    more_after: bool = False


# ---------------------------------------------------------------- jobs

def _any_of(conditions: list[pw.Expression]) -> pw.Expression:
    expr = conditions[0]
    for cond in conditions[1:]:
        expr = expr | cond
    return expr


def _job_where(q: JobQuery, now: float | None = None) -> list[pw.Expression]:
    """The query's conditions; a `since` window needs `now` (the caller's clock)."""
    where: list[pw.Expression] = []
    states = q.states
    if q.sort == "run":  # the claim order exists for waiting jobs only
        # Written out, not bound, so SQLite sees it matches the partial claim index.
        where.append(pw.SQL("state IN ('pending', 'failed')"))
        states = tuple(st for st in states if st in WAITING) or (("\x00none",) if states else ())
    if states:  # a name that is no state matches nothing, which is what it means
        where.append(Job.state.in_(list(states)))
    else:
        where.append(Job.state != State.STAGED)  # a bulk enqueue not yet published
    if q.ids:
        where.append(_any_of([Job.id.startswith(t) for t in q.ids]))
    if q.commands:
        where.append(_any_of([Job.command.contains(t) for t in q.commands]))
    if q.workers:
        where.append(_any_of([Job.worker_id.contains(t) for t in q.workers]))
    if q.queues:
        where.append(Job.queue.in_(list(q.queues)))
    if q.schedules:
        where.append(Job.schedule.in_(list(q.schedules)))
    if q.keys:
        where.append(Job.key.in_(list(q.keys)))
    for term in q.text:
        where.append(Job.id.startswith(term) | Job.command.contains(term))
    if q.since is not None:
        if now is None:
            raise ValueError("a since: filter needs the time it counts back from (now)")
        where.append(Job.created_at >= now - q.since)
    return where


def _job_select(q: JobQuery, now: float | None = None) -> pw.ModelSelect:
    query = Job.select(*ROW_FIELDS)
    for cond in _job_where(q, now):
        query = query.where(cond)
    return query


def _order(sort: str, descending: bool = True) -> tuple[tuple[pw.Field, bool], ...]:
    """The display order; `descending=False` runs the named order backwards."""
    if sort not in JOB_SORTS:
        raise ValueError(f"unknown sort {sort!r}; sorts: {', '.join(JOB_SORTS)}")
    order = JOB_SORTS[sort]
    return order if descending else tuple((col, not desc) for col, desc in order)


def _beyond(order: Sequence[tuple[pw.Field, bool]], values: Sequence[Any], *,
            forward: bool, inclusive: bool) -> pw.Expression:
    """Rows after (forward) or before the anchor `values` in this display order.

    Lexicographic, so columns may run in different directions:
    c1 > v1 OR (c1 = v1 AND (c2 > v2 OR (c2 = v2 AND ...))), plus `c1 >= v1`
    on its own so the index can seek to the anchor instead of scanning to it.
    """
    (col, desc), value = order[0], values[0]
    down = desc == forward  # walking towards smaller values of this column
    if len(order) == 1:
        if inclusive:
            return (col <= value) if down else (col >= value)
        return (col < value) if down else (col > value)
    later = (col < value) if down else (col > value)
    rest = _beyond(order[1:], values[1:], forward=forward, inclusive=inclusive)
    seek = (col <= value) if down else (col >= value)
    return seek & (later | ((col == value) & rest))


def _window(base: pw.ModelSelect, order: Sequence[tuple[pw.Field, bool]],
            anchor: Any, before: int, after: int) -> Window:
    """Up to `before` rows before the anchor and `after` rows from it (inclusive)."""
    forward = [col.desc() if desc else col.asc() for col, desc in order]
    backward = [col.asc() if desc else col.desc() for col, desc in order]
    if anchor is END:
        head = list(base.order_by(*backward).limit(before + after + 1).dicts())
        head.reverse()
        more = len(head) > before + after
        rows = head[1:] if more else head
        return Window(rows=rows, at=len(rows), more_before=more, more_after=False)
    head_rows: list[dict[str, Any]] = []
    if anchor is START:
        tail_rows = list(base.order_by(*forward).limit(after + 1).dicts())
    else:
        tail_rows = list(base.where(_beyond(order, anchor, forward=True, inclusive=True))
                         .order_by(*forward).limit(after + 1).dicts())
        if before > 0:
            head_rows = list(base.where(_beyond(order, anchor, forward=False, inclusive=False))
                             .order_by(*backward).limit(before + 1).dicts())
    more_before = len(head_rows) > before
    head_rows = head_rows[:before]
    head_rows.reverse()
    more_after = len(tail_rows) > after
    tail_rows = tail_rows[:after]
    return Window(rows=head_rows + tail_rows, at=len(head_rows),
                  more_before=more_before, more_after=more_after)


def job_window(q: JobQuery, anchor: Any = START, before: int = 0, after: int = 50, *,
               now: float | None = None) -> Window:
    """Jobs matching `q` around `anchor` (a `q.key_of(row)` tuple, START or END)."""
    return _window(_job_select(q, now), _order(q.sort, q.descending), anchor, before, after)


def job_ids_matching(q: JobQuery, limit: int | None = None, *,
                     now: float | None = None) -> list[str]:
    """Every id the filter matches, oldest first: what a bulk action applies to."""
    query = Job.select(Job.id)
    for cond in _job_where(q, now):
        query = query.where(cond)
    query = query.order_by(Job.seq)
    if limit is not None:
        query = query.limit(limit)
    return [row[0] for row in query.tuples()]


def count_jobs(q: JobQuery, *, now: float | None = None) -> int:
    """How many jobs the filter matches (a filtered DLQ says "200 of 208")."""
    query = Job.select(Job.seq)
    for cond in _job_where(q, now):
        query = query.where(cond)
    return query.count()


def job_detail(job_id: str) -> dict[str, Any] | None:
    """Every stored field of one job (raw times), or None if it is gone."""
    row = Job.select().where(Job.id == job_id).dicts().first()
    return row


def log_tail(opened: Opened, seq: int, offset: int | None,
             max_bytes: int = 65536) -> tuple[bytes, int]:
    """New output of a job's log since `offset` (None: the last `max_bytes`).

    Returns the bytes and the offset to pass next time, so a caller can follow
    a running job by asking again.
    """
    path = logs.log_path(opened.log_dir, seq)
    try:
        size = os.stat(path).st_size
    except OSError:
        return b"", 0
    if offset is None or offset > size:
        offset = max(0, size - max_bytes)
    elif size - offset > max_bytes:
        offset = size - max_bytes
    data = logs.read_log(opened.log_dir, seq, offset)
    return data, offset + len(data)


# ---------------------------------------------------------------- events

EVENT_FIELDS = (Event.seq, Event.job_id, Event.from_state, Event.to_state, Event.attempt,
                Event.exit_code, Event.worker_id, Event.at, Event.note, Event.actor)


def _event_select(q: EventQuery) -> pw.ModelSelect:
    query = Event.select(*EVENT_FIELDS)
    if q.job_ids:
        query = query.where(Event.job_id.in_(list(q.job_ids)))
    if q.states:
        query = query.where(Event.to_state.in_(list(q.states)))
    if q.workers:
        query = query.where(_any_of([Event.worker_id.contains(t) for t in q.workers]))
    for term in q.text:
        query = query.where(Event.job_id.startswith(term) | Event.note.contains(term))
    return query


def event_window(q: EventQuery, anchor: Any = START, before: int = 0,
                 after: int = 50) -> Window:
    """Events newest first around `anchor` (a `(seq,)` tuple, START or END)."""
    return _window(_event_select(q), ((Event.seq, True),), anchor, before, after)


@dataclass(frozen=True)
class AuditQuery:
    """Which operator actions History's other mode shows (newest first): each
    text term must appear in the action, the person, the target or the jobs."""

    text: tuple[str, ...] = ()

    def key_of(self, row: dict[str, Any]) -> tuple:
        return (row["seq"],)


def audit_window(q: AuditQuery, anchor: Any = START, before: int = 0,
                 after: int = 50) -> Window:
    """Operator actions newest first around `anchor` (a `(seq,)` tuple, START or END)."""
    query = AuditEntry.select()
    for term in q.text:
        query = query.where(AuditEntry.action.contains(term) | AuditEntry.user.contains(term)
                            | AuditEntry.token.contains(term) | AuditEntry.host.contains(term)
                            | AuditEntry.target.contains(term)
                            | AuditEntry.job_ids.contains(term))
    return _window(query, ((AuditEntry.seq, True),), anchor, before, after)


def throughput(now: float, *, buckets: int = 30, bucket_s: float = 10.0) -> list[int]:
    """Runs finished per bucket, oldest bucket first, over the last buckets*bucket_s s.

    Uses the index on event.at, so it reads only the recent events.
    """
    start = now - buckets * bucket_s
    counts = [0] * buckets
    index = pw.Cast((Event.at - start) / bucket_s, "INTEGER")
    query = (Event.select(index, pw.fn.COUNT(Event.seq))
             .where(Event.at > start, Event.at <= now, Event.to_state.in_(FINISHED),
                    Event.from_state == State.PROCESSING)
             .group_by(index))
    for slot, n in query.tuples():
        counts[max(0, min(buckets - 1, int(slot)))] += n
    return counts


def queue_activity(now: float, *, buckets: int = 12,
                   bucket_s: float = 10.0) -> dict[str, list[int]]:
    """Per queue, runs finished per bucket (oldest first) over the last
    buckets*bucket_s seconds: the recent events (index on event.at), each
    joined to its job for the queue."""
    start = now - buckets * bucket_s
    index = pw.Cast((Event.at - start) / bucket_s, "INTEGER")
    query = (Event.select(Job.queue, index, pw.fn.COUNT(Event.seq))
             .join(Job, on=(Job.id == Event.job_id))
             .where(Event.at > start, Event.at <= now, Event.to_state.in_(FINISHED),
                    Event.from_state == State.PROCESSING)
             .group_by(Job.queue, index))
    found: dict[str, list[int]] = {}
    for queue, slot, n in query.tuples():
        found.setdefault(queue, [0] * buckets)[max(0, min(buckets - 1, int(slot)))] += n
    return found


# ---------------------------------------------------------------- counts

class StateCounts:
    """Jobs per state for every refresh of a console: a count (engine/counts.py)
    followed through the event log from one refresh to the next, so a refresh
    reads only the events since the last one, a primary-key range.

    The count is remade every `recount_s` seconds (from the stored count when
    that can be followed, so rarely a full one); on PostgreSQL, where events
    cannot be followed, every `pg_recount_s`. `inline=True` counts in `read` when
    a count is due (one thread, tests). With `inline=False` `read` never counts:
    it returns None until a count is adopted and sets `due`; the owner runs
    `full_count` on another connection and hands the result to `adopt`, so
    nothing waits for a slow count.
    """

    def __init__(self, recount_s: float = 300.0, max_delta: int = 100_000, *,
                 inline: bool = True, pg_recount_s: float = 2.0) -> None:
        self.recount_s = recount_s
        self.max_delta = max_delta
        self.inline = inline
        self.pg_recount_s = pg_recount_s
        self.base: counts.Baseline | None = None
        self.counted_at = 0.0  # monotonic
        self.due = True  # a count is wanted (inline=False: the owner runs it)
        self._adopted: tuple[counts.Baseline, float] | None = None

    full_count = staticmethod(counts.fresh)  # any thread, any connection of this database

    def adopt(self, baseline: counts.Baseline, monotonic: float) -> None:
        """Take a count made elsewhere; the next `read` follows on from it."""
        self._adopted = (baseline, monotonic)
        self.due = False

    def read(self, handle: Store, monotonic: float) -> dict[str, int] | None:
        if self._adopted is not None:
            (self.base, self.counted_at), self._adopted = self._adopted, None
        followable = counts.followable(handle)
        age = monotonic - self.counted_at
        if self.base is None or age >= (self.recount_s if followable else self.pg_recount_s):
            if self.inline:
                self.base, self.counted_at = self.full_count(handle), monotonic
                return dict(self.base.counts)
            self.due = True
            if self.base is None:
                return None
        if not followable:
            return dict(self.base.counts)
        found = counts.follow(handle, self.base, max_moves=None)
        if found is None or found[1] > self.max_delta:
            self.due = True  # pruned under it, or a burst: count again soon
            if self.inline:
                self.base = None
                return self.read(handle, monotonic)
        if found is not None:
            self.base = found[0]
        return dict(self.base.counts)
