"""The event log: one row per state change, read back by `history` and the console."""

from __future__ import annotations

from typing import Any, Iterator

from queuectl_tui.clock import iso
from queuectl_tui.engine.storage.models import Event


def record(job_id: str, from_state: str | None, to_state: str, *, at: float,
           attempt: int = 0, exit_code: int | None = None,
           worker_id: str | None = None, note: str | None = None,
           ask_waited_for: bool = False, actor: str | None = None) -> bool:
    """Append one event; callers hold the transaction that made the change.

    Plain SQL: this runs twice per job, and building it with Peewee each time
    cost more than executing it. With `ask_waited_for` (a move to a final state)
    it also returns whether some job names this one in `after`: the probe rides
    on this INSERT rather than costing a round trip of its own, and it must come
    after the job's UPDATE, not inside it: on PostgreSQL an UPDATE that waited
    for an enqueue holding the row (FOR SHARE) still reads with the snapshot it
    started with, and would miss the dependent that enqueue committed.
    """
    db = Event._meta.database
    p = db.param
    cursor = db.execute_sql(
        "INSERT INTO event (job_id, from_state, to_state, at, attempt, exit_code, worker_id,"
        f" note, actor) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
        + (" RETURNING (SELECT 1 FROM dependency WHERE needs = event.job_id LIMIT 1)"
           if ask_waited_for else ""),
        (job_id, from_state, to_state, at, attempt, exit_code, worker_id, note, actor))
    return bool(ask_waited_for and cursor.fetchone()[0] is not None)


def event_dict(ev: Event) -> dict[str, Any]:
    return {
        "seq": ev.seq, "job_id": ev.job_id, "from": ev.from_state, "to": ev.to_state,
        "attempt": ev.attempt, "exit_code": ev.exit_code, "worker_id": ev.worker_id,
        "at": iso(ev.at), "note": ev.note, "by": ev.actor,
    }


def history(job_id: str | None = None, limit: int | None = None,
            newest_first: bool = True, before_seq: int | None = None) -> Iterator[dict[str, Any]]:
    """Events, newest first by default; `before_seq` pages backwards (keyset)."""
    query = Event.select()
    if job_id is not None:
        query = query.where(Event.job_id == job_id)
    if before_seq is not None:
        query = query.where(Event.seq < before_seq)
    query = query.order_by(Event.seq.desc() if newest_first else Event.seq)
    if limit is not None:
        query = query.limit(limit)
    for ev in query.iterator():
        yield event_dict(ev)
