"""Edit a job that has not started: its command, priority, due time, timeout,
retries, queue, environment or directory.

All or nothing, in one transaction, conditioned on what was read: the row is
read (and on PostgreSQL locked) inside the transaction, and the UPDATE holds
the state, `runs` (every claim adds one) and `updated_at` it read in its WHERE
clause. A claim racing it either commits first (the edit then finds the job
running: exit 4, nothing changed) or sees the edited row whole: on SQLite the
two take turns on the write lock; on PostgreSQL the claim's SKIP LOCKED passes
over the row while the edit holds it. A caller that read the job earlier (the
console's form) passes what it read as `expect`, and a job that changed since
is refused the same way.

The change is an event of the one state machine's log with the job's own
state on both sides and a note saying what changed from what to what (values
clipped; the environment's names only, never its values: they may be
secrets). Counts that follow the event log see a move from a state to
itself, which changes no count.
"""

from __future__ import annotations

import json
from typing import Any

from queuectl_tui.clock import iso
from queuectl_tui.engine import events, queues, reads, transitions
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.jobspec import check_edits, check_env
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.states import CLAIMABLE, WAITING, describe_state
from queuectl_tui.errors import Conflict, UsageError

NOTE_VALUE = 60  # characters of a value a history note shows


def edit(ctx: Context, job_id: str, changes: dict[str, Any],
         expect: tuple[str, float] | None = None) -> dict[str, Any]:
    """Change these fields of a waiting job (pending, failed, blocked, held);
    returns the job as edited (`show --json`'s shape). Refused with UsageError
    when nothing would change, Conflict when the job has started or finished
    (or, with `expect` = (state, updated_at) as read before, changed since)."""
    asked = check_edits(changes)
    if not asked:
        raise UsageError("nothing to change: give at least one field to edit")
    with ctx.db.atomic():
        found = reads.get(job_id)
        job = transitions.locked_job(ctx, found.seq)
        if job is None:
            raise Conflict(f"job {job_id} was deleted meanwhile; nothing was edited")
        if expect is not None and (job.state, job.updated_at) != tuple(expect):
            raise Conflict(f"job {job_id} changed since it was read (now "
                           f"{describe_state(job.state)}); nothing was edited")
        if job.state not in WAITING:
            raise Conflict(f"job {job_id} is {describe_state(job.state)}; only a job that has "
                           "not started (pending, retrying, blocked, held) can be edited; "
                           "nothing was edited")
        now = ctx.clock.now()
        new = _new_values(job, asked, now)
        if not new:
            raise UsageError(f"nothing to change: job {job_id} already has these values")
        _update(ctx, job, new, now)
        if "queue" in new:
            needs = {new["queue"]: (job.cpus or 0.0, job.mem or 0, job.gpus or 0)} \
                if (job.cpus or job.mem or job.gpus) else None
            queues.ensure([new["queue"]], now, needs)
        events.record(job.id, job.state, job.state, at=now, attempt=job.attempts,
                      note="edited: " + describe_changes(job, new))
        if job.state in CLAIMABLE:
            ctx.backend.notify()  # due sooner, or in a queue a worker serves
        return reads.detail(job_id)


def _new_values(job: Job, asked: dict[str, Any], now: float) -> dict[str, Any]:
    """Column -> new value, for the columns that would really change."""
    wanted: dict[str, Any] = {}
    for name in ("command", "priority", "max_retries", "queue", "cwd"):
        if name in asked:
            wanted[name] = asked[name]
    if "run_at" in asked:
        wanted["run_at"] = asked["run_at"]
    elif "delay" in asked:
        wanted["run_at"] = now + asked["delay"]
    if "timeout" in asked:
        wanted["timeout"] = asked["timeout"] or None  # 0: no timeout, as at enqueue
    if "env" in asked or "unset_env" in asked:
        env = json.loads(job.env) if job.env else {}
        missing = [name for name in asked.get("unset_env", ()) if name not in env]
        if missing:
            raise UsageError(f"job {job.id} has no env {missing[0]} to unset; nothing was "
                             "edited")
        for name in asked.get("unset_env", ()):
            del env[name]
        env.update(asked.get("env", {}))
        wanted["env"] = json.dumps(check_env(env)) if env else None
    return {name: value for name, value in wanted.items() if getattr(job, name) != value}


def _update(ctx: Context, job: Job, new: dict[str, Any], now: float) -> None:
    p = ctx.db.param
    sets = ", ".join(f"{Job._meta.fields[name].column_name} = {p}" for name in new)
    cursor = ctx.db.execute_sql(
        f"UPDATE job SET {sets}, updated_at = {p} "
        f"WHERE seq = {p} AND state = {p} AND runs = {p} AND updated_at = {p}",
        (*new.values(), now, job.seq, job.state, job.runs, job.updated_at))
    if cursor.rowcount != 1:
        raise Conflict(f"job {job.id} changed meanwhile; nothing was edited")


def describe_changes(job: Job, new: dict[str, Any]) -> str:
    """`priority 0 -> 5; command 'a' -> 'b'`: what changed, from what to what."""
    parts = []
    for name, value in new.items():
        if name == "env":
            before = json.loads(job.env) if job.env else {}
            after = json.loads(value) if value else {}
            added = sorted(set(after) - set(before))
            changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
            removed = sorted(set(before) - set(after))
            said = [f"{what} {', '.join(names)}" for what, names in
                    (("set", added), ("changed", changed), ("unset", removed)) if names]
            parts.append("env " + "; ".join(said))
        else:
            parts.append(f"{name} {_shown(name, getattr(job, name))} -> {_shown(name, value)}")
    return "; ".join(parts)


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "none"
    if name == "run_at":
        return iso(value) or "none"
    if name == "timeout":
        return f"{value:g}s"
    if isinstance(value, str):
        text = value if len(value) <= NOTE_VALUE else value[:NOTE_VALUE - 1] + "…"
        return repr(text)
    return str(value)

