"""Worker rows: who is alive, what each is doing, and the stop request.

A worker is alive while its heartbeat is younger than the lease; anything
older shows as `gone`, whatever its last reported state, because a SIGKILLed
worker never gets to say goodbye.
"""

from __future__ import annotations

from typing import Any

from queuectl_tui.clock import iso
from queuectl_tui.engine import db as schema
from queuectl_tui.engine.models import Worker

LIVE_STATES = ("idle", "busy", "stopping")
KEEP_STOPPED_S = 86400  # finished worker rows are kept a day for the console


def register(worker_id: str, *, host: str, pid: int, supervisor_pid: int | None,
             now: float, queues: list[str] | None = None) -> None:
    """Record a starting worker, with the schema it was built for (db.py refuses
    a migration while live workers of an older one run)."""
    Worker.delete().where(Worker.heartbeat_at < now - KEEP_STOPPED_S).execute()
    fields = dict(host=host, pid=pid, supervisor_pid=supervisor_pid, state="idle",
                  started_at=now, heartbeat_at=now, stop_requested=False, stop_grace=None,
                  queues=",".join(queues) if queues else None,
                  schema_version=schema.SCHEMA_VERSION)
    Worker.insert(id=worker_id, jobs_done=0, jobs_failed=0, **fields).on_conflict(
        conflict_target=[Worker.id],
        update={getattr(Worker, k): v for k, v in fields.items()}).execute()


def beat(worker_id: str, *, state: str, now: float, job_id: str | None = None,
         job_started_at: float | None = None) -> tuple[bool, float | None]:
    """Report liveness; returns (asked to stop?, grace if asked to stop now)."""
    Worker.update(state=state, heartbeat_at=now, job_id=job_id,
                  job_started_at=job_started_at).where(Worker.id == worker_id).execute()
    row = Worker.select(Worker.stop_requested, Worker.stop_grace).where(
        Worker.id == worker_id).first()
    if row is None:
        return False, None
    return bool(row.stop_requested), row.stop_grace


def working(worker_id: str, *, now: float, job_id: str | None, done: int = 0,
            failed: int = 0) -> bool:
    """The worker row after a claim or an outcome, in that transaction: busy with
    `job_id` (None: idle), plus the outcome's counts; returns the stop flag, read
    by the same statement. A busy worker writes its row once per job."""
    db = Worker._meta.database
    row = db.execute_sql(
        "UPDATE worker SET state = ?, job_id = ?, job_started_at = ?, "
        "heartbeat_at = ?, jobs_done = jobs_done + ?, jobs_failed = jobs_failed + ? "
        "WHERE id = ? RETURNING stop_requested".replace("?", db.param),
        ("busy" if job_id else "idle", job_id, now if job_id else None,
         now, done, failed, worker_id)).fetchone()
    return bool(row and row[0])


def pid_of(worker_id: str | None) -> int | None:
    row = Worker.select(Worker.pid).where(Worker.id == worker_id).first() if worker_id else None
    return row.pid if row else None


def stopped(worker_id: str, *, now: float) -> None:
    Worker.update(state="stopped", heartbeat_at=now, job_id=None,
                  job_started_at=None).where(Worker.id == worker_id).execute()


def gone(worker_id: str) -> None:
    """Its supervisor saw it die: say so now rather than after the lease runs out."""
    Worker.update(state="gone", job_id=None, job_started_at=None).where(
        Worker.id == worker_id).execute()


def request_stop(*, now: float, lease: float, worker_ids: list[str] | None = None,
                 grace: float | None = None) -> list[Worker]:
    """Flag live workers to stop after their current job (or, with `grace`, now);
    returns those flagged."""
    live = [w for w in live_workers(now=now, lease=lease)
            if worker_ids is None or w.id in worker_ids]
    if live:
        fields: dict[str, Any] = {"stop_requested": True}
        if grace is not None:
            fields["stop_grace"] = grace
        Worker.update(**fields).where(Worker.id.in_([w.id for w in live])).execute()
    return live


def live_workers(*, now: float, lease: float) -> list[Worker]:
    return list(Worker.select().where(Worker.state.in_(LIVE_STATES),
                                      Worker.heartbeat_at >= now - lease)
                .order_by(Worker.started_at, Worker.id))


def shown_state(w: Worker, *, now: float, lease: float) -> str:
    if w.state in LIVE_STATES and w.heartbeat_at < now - lease:
        return "gone"
    if w.state in LIVE_STATES and w.stop_requested:
        return "stopping"
    return w.state


def worker_dict(w: Worker, *, now: float, lease: float) -> dict[str, Any]:
    return {
        "id": w.id, "host": w.host, "pid": w.pid, "supervisor_pid": w.supervisor_pid,
        "state": shown_state(w, now=now, lease=lease),
        "job_id": w.job_id, "job_started_at": iso(w.job_started_at),
        "started_at": iso(w.started_at), "heartbeat_at": iso(w.heartbeat_at),
        "heartbeat_age": round(max(0.0, now - w.heartbeat_at), 3),
        "jobs_done": w.jobs_done, "jobs_failed": w.jobs_failed,
        "queues": w.queues.split(",") if w.queues else None,  # None: every queue
    }


RECENT_GONE_S = 3600  # a gone worker is news for an hour; after that `worker list --all`


def all_workers(*, include_stopped: bool = False, now: float | None = None) -> list[Worker]:
    """Every worker row, or (by default) the live ones and those gone within the
    hour: an operator should notice a death, not scroll past yesterday's."""
    query = Worker.select().order_by(Worker.started_at, Worker.id)
    if not include_stopped:
        query = query.where(Worker.state != "stopped")
        if now is not None:
            query = query.where(Worker.heartbeat_at >= now - RECENT_GONE_S)
    return list(query)


def count_hidden_gone(*, now: float) -> int:
    return Worker.select().where(Worker.state != "stopped",
                                 Worker.heartbeat_at < now - RECENT_GONE_S).count()
