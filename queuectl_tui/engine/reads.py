"""Reading jobs and workers: a job's public shape, one job, listings, counts,
who is working, and a job's history, runs and log. Nothing here writes a job."""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

from queuectl_tui.clock import iso
from queuectl_tui.engine import (config, counts, dependencies, progress, queues, registry,
                                 uniqueness)
from queuectl_tui.engine.storage.columns import LIST_FIELDS
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.states import FINAL, State, check_state
from queuectl_tui.errors import NotFound


def job_dict(job: Job, *, with_output: bool = False) -> dict[str, Any]:
    """The public shape of a job: the same in `--json`, `show` and the console."""
    data = {
        "id": job.id, "command": job.command, "state": job.state, "queue": job.queue,
        "attempts": job.attempts, "max_retries": job.max_retries,
        "priority": job.priority, "run_at": iso(job.run_at), "timeout": job.timeout,
        "created_at": iso(job.created_at), "updated_at": iso(job.updated_at),
        "started_at": iso(job.started_at), "finished_at": iso(job.finished_at),
        "exit_code": job.exit_code, "last_error": job.last_error,
        "worker_id": job.worker_id, "runs": job.runs,
        "next_retry_at": iso(job.run_at) if job.state == State.FAILED else None,
        "cancel_requested_at": iso(job.cancel_requested_at),
        "cwd": job.cwd, "env": json.loads(job.env) if job.env else {},
        "schedule": job.schedule, "schedule_tick": iso(job.schedule_tick),
        "unique_key": job.unique_key, "no_retry_on": job.no_retry_on,
        "key": job.key,
        "needs": {"cpus": job.cpus, "mem": job.mem, "gpus": job.gpus}
        if (job.cpus or job.mem or job.gpus) else None,
        "devices": job.devices.split(",") if job.devices else None,
        # engine/snooze.py, engine/running.py: snoozes in this run series, what
        # `extend` added to the timeout, and a pause: asked, since when its
        # processes are stopped, seconds stopped before the current pause
        "snoozes": job.snoozes or 0, "extended_by": job.extended_by,
        "paused": job.state == State.PROCESSING and job.paused_at is not None,
        "pause_requested": bool(job.pause_requested) and job.state == State.PROCESSING,
        "paused_at": iso(job.paused_at) if job.state == State.PROCESSING else None,
        "paused_for": job.paused_for,
        # Dead: how it failed, made generic, and the DLQ group that stands for
        # (engine/signatures.py). A job run again keeps neither.
        **(_failure_group(job.failure_sig) if job.state == State.DEAD
           else {"failure_sig": None, "failure_group": None}),
        "progress_regex": job.progress_regex,
        "progress": None if job.progress_at is None or (seen := progress.shown_of(job)) is None
        else seen.public(),
    }
    if with_output:
        data["stdout_tail"] = job.stdout_tail or ""
        data["stderr_tail"] = job.stderr_tail or ""
        data["result"] = None if job.result is None else json.loads(job.result)
    return data


def _failure_group(sig: str | None) -> dict[str, str | None]:
    from queuectl_tui.engine import signatures  # read only for dead jobs
    return {"failure_sig": sig or None, "failure_group": signatures.group_id(sig)}


def get(job_id: str) -> Job:
    """One job by id, or NotFound (a bulk enqueue's rows are no job yet)."""
    from queuectl_tui.engine.jobspec import check_id  # `status` and `list` never need it
    check_id(job_id)
    job = Job.get_or_none(Job.id == job_id)
    if job is None or job.state == State.STAGED:
        raise NotFound(f"no job with id {job_id!r}")
    return job


def detail(job_id: str) -> dict[str, Any]:
    """A job's public shape, with what it waits for when it was enqueued --after."""
    data = job_dict(get(job_id))
    data["after"] = dependencies.waiting_for(job_id)
    return data


def unique_holder(key: str, job_id: str) -> dict[str, Any]:
    """What `enqueue --if-absent` answers with: the job holding `key`, or, once
    that job was pruned while its --unique-for still holds the key, its id
    with `state` null, `pruned` true and when the key lapses."""
    try:
        return detail(job_id)
    except NotFound:
        lock = uniqueness.lock_of(key)
        return {"id": job_id, "state": None, "pruned": True, "unique_key": key,
                "unique_until": iso(lock.until) if lock else None}


def jobs(state: str | Iterable[str] | None = None, limit: int | None = None,
         after_seq: int | None = None, queue: str | None = None,
         key: str | None = None, group: str | None = None) -> Iterator[Any]:
    """Jobs oldest first, streamed (never capped unless `limit` is given), as
    read-only named tuples: twice as fast as model instances for big listings.
    `state` is one state or several; `group` a DLQ failure group's id (or a
    prefix of one), which keeps only that group's dead jobs."""
    query = Job.select(*LIST_FIELDS)
    if group is not None:
        from queuectl_tui.engine import failure_groups  # only `dlq list --group`
        query = query.where(failure_groups.members(failure_groups.resolve(group)))
    if state is None:
        query = query.where(Job.state != State.STAGED)
    elif isinstance(state, str):
        query = query.where(Job.state == check_state(state))
    else:
        query = query.where(Job.state.in_([check_state(st) for st in state]))
    if after_seq is not None:
        query = query.where(Job.seq > after_seq)
    if queue is not None:
        query = query.where(Job.queue == queues.check_name(queue))
    if key is not None:
        query = query.where(Job.key == key)
    query = query.order_by(Job.seq)
    if limit is not None:
        query = query.limit(limit)
    return query.namedtuples().iterator()


def finished(job_ids: list[str]) -> dict[str, Job]:
    """Which of these jobs have finished (completed, dead, cancelled): one
    cheap query, for `wait` and `logs --follow` to poll."""
    found: dict[str, Job] = {}
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start:start + 500]
        for job in Job.select(Job.id, Job.state, Job.exit_code, Job.last_error).where(
                Job.id.in_(chunk), Job.state.in_(FINAL)):
            found[job.id] = job
    return found


def state_counts(ctx: Context, queue: str | None = None) -> dict[str, int]:
    """Jobs per state, in the whole database or one queue. The whole
    database's come from the stored count followed through the event log
    (engine/counts.py), not from reading every row."""
    if queue is not None:
        return counts.count_states(queues.check_name(queue))
    return counts.current(ctx)


def workers(ctx: Context, include_stopped: bool = False) -> list[dict[str, Any]]:
    """Live workers and those gone within the hour; with `include_stopped`, all."""
    lease = float(config.get("lease-seconds"))
    now = ctx.clock.now()
    return [registry.worker_dict(w, now=now, lease=lease)
            for w in registry.all_workers(include_stopped=include_stopped, now=now)]


def stranded(ctx: Context, job_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Processing jobs (all, or these) whose worker is gone, with a note of
    when they will be rescued (registry.stranded)."""
    return registry.stranded(now=ctx.clock.now(), lease=float(config.get("lease-seconds")),
                             host=ctx.host, job_ids=job_ids)


def any_worker_alive(ctx: Context) -> bool:
    """Whether any worker, on any host, would run what is enqueued now."""
    return registry.any_live(now=ctx.clock.now(), lease=float(config.get("lease-seconds")))


def pools(ctx: Context) -> list[dict[str, Any]]:
    """Each live pool with its capacity, used and free (engine/flow.py)."""
    from queuectl_tui.engine import flow
    now, lease = ctx.clock.now(), float(config.get("lease-seconds"))
    return flow.pool_usage(ctx.db, registry.live_workers(now=now, lease=lease))


def why_waiting(ctx: Context, job: Job) -> str | None:
    """What holds a due job back, if anything: a paused queue, a rate, its key's
    limit, or needs no live pool could ever give (engine/flow.py); or that a
    person holds it (engine/hold.py)."""
    if job.state == State.HELD:
        return f"held: it runs only once released (queuectl release {job.id})"
    from queuectl_tui.engine import flow
    now, lease = ctx.clock.now(), float(config.get("lease-seconds"))
    return flow.why_waiting(ctx.db, job, registry.live_workers(now=now, lease=lease), now)


def paused_count(queue: str | None = None) -> int:
    """Running jobs whose processes are stopped now (only running rows are read)."""
    query = Job.select().where(Job.state == State.PROCESSING, Job.paused_at.is_null(False))
    if queue is not None:
        query = query.where(Job.queue == queues.check_name(queue))
    return query.count()
