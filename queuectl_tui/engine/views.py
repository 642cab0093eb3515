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

from queuectl_tui.engine import logs
from queuectl_tui.engine.db import Opened
from queuectl_tui.engine.models import Event, Job

# Finishing moves: a run ended (well or not). Counted by the throughput sparkline.
FINISHED = ("completed", "failed", "dead")

# Sort name -> column. Keyset paging orders by (column, seq), so every column here
# is NOT NULL and `seq` breaks ties.
JOB_SORTS: dict[str, pw.Field] = {
    "age": Job.seq,
    "priority": Job.priority,
    "attempts": Job.attempts,
    "updated": Job.updated_at,
    "run_at": Job.run_at,
}

ROW_FIELDS = (Job.seq, Job.id, Job.command, Job.state, Job.attempts, Job.max_retries,
              Job.priority, Job.run_at, Job.created_at, Job.updated_at, Job.started_at,
              Job.finished_at, Job.exit_code, Job.last_error, Job.worker_id)

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
    sort: str = "age"
    descending: bool = True

    def key_of(self, row: dict[str, Any]) -> tuple:
        """The keyset anchor of a row returned for this query."""
        if self.sort == "age":
            return (row["seq"],)
        return (row[JOB_SORTS[self.sort].name], row["seq"])

    @property
    def has_text(self) -> bool:
        return bool(self.ids or self.commands or self.workers or self.text)


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


def _job_where(q: JobQuery) -> list[pw.Expression]:
    where: list[pw.Expression] = []
    if q.states:  # a name that is no state matches nothing, which is what it means
        where.append(Job.state.in_(list(q.states)))
    if q.ids:
        where.append(_any_of([Job.id.startswith(t) for t in q.ids]))
    if q.commands:
        where.append(_any_of([Job.command.contains(t) for t in q.commands]))
    if q.workers:
        where.append(_any_of([Job.worker_id.contains(t) for t in q.workers]))
    for term in q.text:
        where.append(Job.id.startswith(term) | Job.command.contains(term))
    return where


def _job_select(q: JobQuery) -> pw.ModelSelect:
    query = Job.select(*ROW_FIELDS)
    for cond in _job_where(q):
        query = query.where(cond)
    return query


def _key_columns(sort: str) -> tuple[pw.Field, ...]:
    if sort not in JOB_SORTS:
        raise ValueError(f"unknown sort {sort!r}; sorts: {', '.join(JOB_SORTS)}")
    col = JOB_SORTS[sort]
    return (Job.seq,) if col is Job.seq else (col, Job.seq)


def _compare(cols: Sequence[pw.Field], op: str, values: Sequence[Any]) -> pw.Expression:
    lhs = cols[0] if len(cols) == 1 else pw.Tuple(*cols)
    rhs = values[0] if len(values) == 1 else pw.Tuple(*values)
    return pw.Expression(lhs, op, rhs)


def _window(base: pw.ModelSelect, cols: Sequence[pw.Field], descending: bool,
            anchor: Any, before: int, after: int) -> Window:
    """Up to `before` rows before the anchor and `after` rows from it (inclusive)."""
    forward = [c.desc() for c in cols] if descending else [c.asc() for c in cols]
    backward = [c.asc() for c in cols] if descending else [c.desc() for c in cols]
    if anchor is END:
        head = list(base.order_by(*backward).limit(before + after + 1).dicts())
        head.reverse()
        more = len(head) > before + after
        rows = head[1:] if more else head
        return Window(rows=rows, at=len(rows), more_before=more, more_after=False)
    tail_rows: list[dict[str, Any]] = []
    head_rows: list[dict[str, Any]] = []
    if anchor is START:
        tail_rows = list(base.order_by(*forward).limit(after + 1).dicts())
    else:
        on_or_after = "<=" if descending else ">="
        strictly_before = ">" if descending else "<"
        tail_rows = list(base.where(_compare(cols, on_or_after, anchor))
                         .order_by(*forward).limit(after + 1).dicts())
        if before > 0:
            head_rows = list(base.where(_compare(cols, strictly_before, anchor))
                             .order_by(*backward).limit(before + 1).dicts())
    more_before = len(head_rows) > before
    head_rows = head_rows[:before]
    head_rows.reverse()
    more_after = len(tail_rows) > after
    tail_rows = tail_rows[:after]
    return Window(rows=head_rows + tail_rows, at=len(head_rows),
                  more_before=more_before, more_after=more_after)


def job_window(q: JobQuery, anchor: Any = START, before: int = 0, after: int = 50) -> Window:
    """Jobs matching `q` around `anchor` (a `q.key_of(row)` tuple, START or END)."""
    return _window(_job_select(q), _key_columns(q.sort), q.descending, anchor, before, after)


def job_ids_matching(q: JobQuery, limit: int | None = None) -> list[str]:
    """Every id the filter matches, oldest first: what a bulk action applies to."""
    query = Job.select(Job.id)
    for cond in _job_where(q):
        query = query.where(cond)
    query = query.order_by(Job.seq)
    if limit is not None:
        query = query.limit(limit)
    return [row[0] for row in query.tuples()]


def count_matching(q: JobQuery) -> int:
    query = Job.select(pw.fn.COUNT(Job.seq))
    for cond in _job_where(q):
        query = query.where(cond)
    return int(query.scalar() or 0)


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
                Event.exit_code, Event.worker_id, Event.at, Event.note)


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
    return _window(_event_select(q), (Event.seq,), True, anchor, before, after)


def throughput(now: float, *, buckets: int = 30, bucket_s: float = 10.0) -> list[int]:
    """Runs finished per bucket, oldest bucket first, over the last buckets*bucket_s s.

    Uses the index on event.at, so it reads only the recent events.
    """
    start = now - buckets * bucket_s
    counts = [0] * buckets
    index = pw.Cast((Event.at - start) / bucket_s, "INTEGER")
    query = (Event.select(index, pw.fn.COUNT(Event.seq))
             .where(Event.at > start, Event.at <= now, Event.to_state.in_(FINISHED))
             .group_by(index))
    for slot, n in query.tuples():
        counts[max(0, min(buckets - 1, int(slot)))] += n
    return counts
