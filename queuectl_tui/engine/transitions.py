"""The one way a job changes state, and what a change sets off.

Every move but the claim goes through `move`: it checks the move against the
state machine (engine/states.py), conditions the UPDATE on what the caller
believes (the state it read, and for workers the claim token), and records the
event in the same transaction. The claim is the one change chosen by SQL (the
next due job); it records its event through the same `events.record`.
"""

from __future__ import annotations

from typing import Any

from queuectl_tui.engine import dependencies, events, queues, uniqueness
from queuectl_tui.engine.storage.backends.base import HOOKS_CHANNEL
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.states import FINAL, MOVES, State, describe_state
from queuectl_tui.errors import Conflict


def move(ctx: Context, job: Job, to: str, *, token: str | None = None,
         worker_id: str | None = None, note: str | None = None, **fields: Any) -> bool:
    """Move `job` from the state the caller saw to `to`; False if it had moved on.

    Must run inside a write transaction. The WHERE clause carries the caller's
    belief (state, claim token), so a stale caller changes nothing.
    """
    if to not in MOVES[job.state]:
        raise Conflict(f"job {job.id} is {describe_state(job.state)}; it cannot become {to}")
    now = ctx.clock.now()
    names = tuple(fields)
    params = [to, now, *fields.values(), job.seq, job.state]
    if token is not None:
        params.append(token)
    cursor = ctx.db.execute_sql(_update_sql(ctx, names, token is not None), params)
    if cursor.rowcount != 1:
        return False
    if to == State.PENDING:
        ctx.backend.notify()
    waited_for = events.record(job.id, job.state, to, at=now, attempt=job.attempts,
                               exit_code=fields.get("exit_code"), worker_id=worker_id,
                               note=note, ask_waited_for=to in FINAL,
                               actor=ctx.actor.label if ctx.actor else None)
    _after_move(ctx, job, to, now, fields.get("exit_code"), waited_for)
    return True


def mover(ctx: Context) -> Any:
    """`move` as the callback engine/dependencies.py takes (it cannot import this
    module: this module imports it)."""
    def move_dependent(job: Job, to: str, note: str, fields: dict[str, Any]) -> bool:
        return move(ctx, job, to, note=note, **fields)
    return move_dependent


def _after_move(ctx: Context, job: Job, to: str, now: float, exit_code: int | None,
                waited_for: bool) -> None:
    """What a move sets off, in its own transaction. Reaching a final state:
    blocked dependents released or cancelled (if `waited_for`: some job names
    this one in `after`), the unique key let go, the finish hook queued.
    (Leaving one, the caller takes the key again: operator.run_all_again.)
    Dependents are worked through a list, not by recursion: a cancelled chain
    of thousands of jobs is one loop."""
    if to not in FINAL:
        return
    queue_name, key, keep = final_info(job)
    if key:
        uniqueness.release(job.id, key, keep, now)
    from queuectl_tui.engine import hooks  # `status` and `list` never finish a job
    ctx.hooks = (ctx.hooks or hooks.HookConfig()).fresh()
    command = ctx.hooks.command_for(queue_name)
    if command:
        hooks.record(command, job_id=job.id, state=to, exit_code=exit_code,
                     queue=queue_name, attempt=job.attempts, now=now)
        ctx.backend.notify(HOOKS_CHANNEL)
    if not waited_for:
        return
    if ctx.finished_now is not None:  # inside the loop below: it takes this too
        ctx.finished_now.append((job.id, to))
        return
    ctx.finished_now = [(job.id, to)]
    try:
        while ctx.finished_now:
            job_id, state = ctx.finished_now.pop(0)
            dependencies.on_final(ctx.db, job_id, state, now, mover(ctx),
                                  ctx.backend.lock_rows)
    finally:
        ctx.finished_now = None


def final_info(job: Job) -> tuple[str, str | None, float | None]:
    """(queue, unique key, unique_for) of a job, from the row if the caller
    loaded only a few columns (the worker's path has them from its claim)."""
    if "queue" in job.__data__ and "unique_key" in job.__data__:
        return job.queue, job.unique_key, job.unique_for
    row = Job.select(Job.queue, Job.unique_key, Job.unique_for).where(
        Job.seq == job.seq).tuples().first()
    return row if row else (queues.DEFAULT, None, None)


def locked_job(ctx: Context, seq: int) -> Job | None:
    """The job row, locked until commit (PostgreSQL: SELECT … FOR UPDATE)."""
    rows = list(Job.raw(f"SELECT * FROM job WHERE seq = {ctx.db.param}"
                        f"{ctx.backend.lock_rows}", seq))
    return rows[0] if rows else None


def _update_sql(ctx: Context, names: tuple[str, ...], with_token: bool) -> str:
    """The conditional UPDATE for these fields, built once: on the hot path
    (every claim and finish) Peewee's query builder cost more than SQLite."""
    key = (names, with_token)
    sql = ctx.update_sql.get(key)
    if sql is None:
        p = ctx.db.param
        sets = "".join(f", {Job._meta.fields[n].column_name} = {p}" for n in names)
        sql = (f"UPDATE job SET state = {p}, updated_at = {p}{sets} "
               f"WHERE seq = {p} AND state = {p}"
               + (f" AND claim_token = {p}" if with_token else ""))
        ctx.update_sql[key] = sql
    return sql
