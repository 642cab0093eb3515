"""Dependencies: a job enqueued `--after` other jobs waits (`blocked`) until all
of them have completed.

Checked at enqueue: every named job exists (or comes in the same file), none has
already ended dead or cancelled, and the file's own dependencies have no cycle.
Released in the transaction that records the dependency's outcome (the caller's
`_transition`), so a crash can never leave a dependent waiting for a job that
already finished: when a job completes, each blocked dependent whose other
dependencies have completed too becomes pending; when it ends dead or cancelled,
its blocked dependents are cancelled naming it, and theirs in turn.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import peewee as pw

from queuectl_tui.engine.models import Dependency, Job
from queuectl_tui.errors import Conflict, NotFound, UsageError

ENDED_BADLY = ("dead", "cancelled")


def check(specs: list[Any], ids: list[str]) -> dict[str, str]:
    """Validate the `after` lists of a batch whose jobs get `ids`; returns the
    initial state of each job that has dependencies ('pending' when all of them
    have completed already, else 'blocked'). Raises before anything is written."""
    in_batch = set(ids)
    named = sorted({dep for spec in specs for dep in spec.after} - in_batch)
    stored = _states(named)
    for dep in named:
        if dep not in stored:
            raise NotFound(f"--after names {dep!r}, which is no job; nothing was enqueued")
        if stored[dep] in ENDED_BADLY:
            raise Conflict(f"--after names {dep!r}, which ended {stored[dep]}: the job "
                           "would never run; nothing was enqueued")
    _refuse_cycles(specs, ids)
    initial = {}
    for spec, job_id in zip(specs, ids):
        if spec.after:
            waits = any(dep in in_batch or stored[dep] != "completed" for dep in spec.after)
            initial[job_id] = "blocked" if waits else "pending"
    return initial


def _states(ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found.update(Job.select(Job.id, Job.state).where(Job.id.in_(chunk)).tuples())
    return found


def _refuse_cycles(specs: list[Any], ids: list[str]) -> None:
    """Only jobs of the same batch can form a cycle (stored jobs cannot name new
    ones). Depth-first search with colours, iterative: files can be long."""
    edges = {job_id: [d for d in spec.after if d in set(ids)]
             for spec, job_id in zip(specs, ids) if spec.after}
    colour: dict[str, int] = {}  # 1 on the path, 2 done
    for root in edges:
        if colour.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        colour[root] = 1
        while stack:
            node, i = stack[-1]
            nexts = edges.get(node, [])
            if i < len(nexts):
                stack[-1] = (node, i + 1)
                nxt = nexts[i]
                if colour.get(nxt) == 1:
                    raise UsageError(f"--after makes a cycle ({nxt} waits for itself through "
                                     f"{node}); nothing was enqueued")
                if not colour.get(nxt):
                    colour[nxt] = 1
                    stack.append((nxt, 0))
            else:
                colour[node] = 2
                stack.pop()


def rows(specs: list[Any], ids: list[str]) -> list[tuple[str, str]]:
    return [(job_id, dep) for spec, job_id in zip(specs, ids) for dep in spec.after]


def waiting_for(job_id: str) -> list[dict[str, Any]]:
    """What a job was enqueued after, with each one's state now (None: pruned or
    deleted), for `show` and the console."""
    needs = [r.needs for r in Dependency.select(Dependency.needs)
             .where(Dependency.job_id == job_id).order_by(Dependency.seq)]
    states = _states(needs)
    return [{"id": dep, "state": states.get(dep)} for dep in needs]


def needed_by(job_id: str, limit: int = 500) -> list[dict[str, Any]]:
    """The jobs enqueued --after this one (the other way round from
    `waiting_for`), each with its state now, whatever it is (the index on
    dependency.needs)."""
    ids = [r.job_id for r in Dependency.select(Dependency.job_id)
           .where(Dependency.needs == job_id).order_by(Dependency.seq).limit(limit)]
    states = _states(ids)
    return [{"id": dep, "state": states.get(dep)} for dep in ids if dep in states]


def dependents(db: pw.Database, job_id: str) -> list[Job]:
    """Blocked jobs that wait for `job_id` (the index on dependency.needs).

    Almost always finds nothing: a plain-SQL probe first (about 10 us), and only
    when a job has dependents the model query (building it with Peewee cost more
    than 100 us per job). A job ending on the workers' path does not get here
    unless its own final UPDATE found a dependency (Queue._update_sql)."""
    if db.execute_sql(f"SELECT 1 FROM dependency WHERE needs = {db.param} LIMIT 1",
                      (job_id,)).fetchone() is None:
        return []
    return list(Job.select(Job.seq, Job.id, Job.state, Job.attempts, Job.run_at, Job.queue,
                           Job.unique_key, Job.unique_for)
                .join(Dependency, on=(Dependency.job_id == Job.id))
                .where(Dependency.needs == job_id, Job.state == "blocked"))


def unmet(job_id: str) -> bool:
    """Does this job still wait for a dependency that has not completed?"""
    return (Dependency.select(Dependency.seq)
            .join(Job, on=(Job.id == Dependency.needs))
            .where(Dependency.job_id == job_id, Job.state != "completed")
            .exists())


def on_final(db: pw.Database, job_id: str, state: str, now: float,
             move: Callable[[Job, str, str, dict[str, Any]], bool]) -> None:
    """`job_id` just reached `state` (inside its transaction): release or cancel
    its blocked dependents. `move(job, to, note, fields)` is the queue's own
    transition, so every change is a move of the one state machine, with its event
    (and a cancelled dependent's own dependents follow through the same call)."""
    for dependent in dependents(db, job_id):
        if state == "completed":
            if not unmet(dependent.id):
                move(dependent, "pending", f"released: {job_id} completed",
                     {"run_at": max(dependent.run_at, now)})
        else:
            reason = (f"dependency {job_id} was deleted" if state == "deleted"
                      else f"dependency {job_id} ended {state}")
            move(dependent, "cancelled", reason,
                 {"last_error": reason, "finished_at": now})


def forget(job_ids: Iterable[str]) -> None:
    """Dependency rows of jobs that are gone (pruned or deleted)."""
    ids = list(job_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        Dependency.delete().where(Dependency.job_id.in_(chunk)).execute()
