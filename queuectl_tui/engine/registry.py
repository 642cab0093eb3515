"""Worker rows: who is alive, what each is doing, and the stop request.

A worker is alive while its heartbeat is younger than the lease; anything
older shows as `gone`, whatever its last reported state, because a SIGKILLed
worker never gets to say goodbye.
"""

from __future__ import annotations

from typing import Any, Callable

from queuectl_tui.clock import iso
from queuectl_tui.engine import procs
from queuectl_tui.engine.storage import schema
from queuectl_tui.engine.storage.models import Job, Worker
from queuectl_tui.engine.states import State

LIVE_STATES = ("idle", "busy", "stopping")
# What a job left `processing` by a worker that is no longer alive waits for:
# a live worker's rescue scan (within a lease), or, with none alive, a new pool.
GONE_UNTIL_POOL = "its worker is gone: it will be rescued when a pool starts"
GONE_UNTIL_LEASE = "its worker is gone: a live worker will rescue it when its lease runs out"
KEEP_STOPPED_S = 86400  # finished worker rows are kept a day for the console


def register(worker_id: str, *, host: str, pid: int, supervisor_pid: int | None,
             now: float, queues: list[str] | None = None, pool: str | None = None,
             capacity: str | None = None, lock: Callable[[], None] | None = None) -> None:
    """Record a starting worker, with the schema it was built for (storage/schema.py refuses
    a migration while live workers of an older one run). `lock` (the backend's
    claims lock, taken alone): a claim counting side by side relies on the
    number of live workers not growing under it (engine/headroom.py)."""
    fields = dict(host=host, pid=pid, supervisor_pid=supervisor_pid, state="idle",
                  started_at=now, heartbeat_at=now, stop_requested=False, stop_grace=None,
                  queues=",".join(queues) if queues else None,
                  schema_version=schema.SCHEMA_VERSION, pool=pool, capacity=capacity)
    with Worker._meta.database.atomic():
        if lock is not None:
            lock()
        Worker.delete().where(Worker.heartbeat_at < now - KEEP_STOPPED_S).execute()
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
                 grace: float | None = None, host: str | None = None,
                 pool: int | None = None) -> list[Worker]:
    """Flag live workers to stop after their current job (or, with `grace`, now);
    returns those flagged. `host` and `pool` (a supervisor's pid, or a lone
    worker's) narrow it to one host's workers, or one pool's."""
    live = [w for w in live_workers(now=now, lease=lease)
            if (worker_ids is None or w.id in worker_ids) and in_pool(w, host, pool)]
    if live:
        fields: dict[str, Any] = {"stop_requested": True}
        if grace is not None:
            fields["stop_grace"] = grace
        Worker.update(**fields).where(Worker.id.in_([w.id for w in live])).execute()
    return live


def in_pool(w: Worker, host: str | None, pool: int | None) -> bool:
    """Whether worker `w` runs on `host` in the pool of supervisor pid `pool`
    (None: any). A worker without a supervisor is a pool of its own."""
    return (host is None or w.host == host) and \
        (pool is None or (w.supervisor_pid or w.pid) == pool)


def any_live(*, now: float, lease: float) -> bool:
    """Whether any worker of the database is alive: one indexed read, cheap
    enough for every `enqueue` to ask."""
    return Worker.select(Worker.id).where(Worker.state.in_(LIVE_STATES),
                                          Worker.heartbeat_at >= now - lease).exists()


def live_workers(*, now: float, lease: float) -> list[Worker]:
    return list(Worker.select().where(Worker.state.in_(LIVE_STATES),
                                      Worker.heartbeat_at >= now - lease)
                .order_by(Worker.started_at, Worker.id))


def stranded(*, now: float, lease: float, host: str,
             job_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Jobs `processing` whose worker is not alive (a pool killed outright, a
    host lost), each with what it waits for: `status`, `show` and the console
    say it, so a job stuck that way is not mistaken for one running. A worker
    of this host is judged by its process at once, others by their lease."""
    live = {w.id for w in live_workers(now=now, lease=lease)
            if w.host != host or procs.worker_alive(w.pid, w.id)}
    query = Job.select(Job.id, Job.worker_id).where(Job.state == State.PROCESSING)
    if job_ids is not None:
        query = query.where(Job.id.in_(job_ids))
    note = GONE_UNTIL_LEASE if live else GONE_UNTIL_POOL
    return [{"id": job.id, "worker_id": job.worker_id, "note": note}
            for job in query.order_by(Job.seq) if job.worker_id not in live]


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
        "pool": w.pool,
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
