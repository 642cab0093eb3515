"""Dependencies: a job enqueued `--after` other jobs waits (`blocked`) until all
of them have completed.

Checked at enqueue: every named job exists (or comes in the same file), none has
already ended dead or cancelled, and the file's own dependencies have no cycle.
A row still being written by a bulk enqueue (`staged`) is no job yet. Released
in the transaction that records the dependency's outcome (the caller's
`_transition`), so a crash can never leave a dependent waiting for a job that
already finished: when a job completes, each blocked dependent whose other
dependencies have completed too becomes pending; when it ends dead or cancelled,
or is deleted, its blocked dependents are cancelled naming it, and theirs in turn.
A held dependent (engine/hold.py) is left held when a dependency completes (its
release decides) and cancelled like a blocked one when it ends badly.

Concurrent writers (PostgreSQL): whoever decides from a dependency's state
holds that row `FOR SHARE` until commit (enqueue, requeue), and a job's outcome
looks for its dependents in a statement after its own UPDATE, so one of the two
always sees the other's commit; a dependent is locked before its dependencies
are counted, so two dependencies completing at once cannot both count the other
as unfinished. Locks go in `seq` order: a dependency is always older than its
dependents. SQLite's single writer (BEGIN IMMEDIATE) needs none of it.

A dependency that leaves the table had finished (pruned) or was deleted (its
dependents were cancelled then): for the jobs that still wait, and for a
requeue, a job that is gone counts as completed.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import peewee as pw

from queuectl_tui.engine.storage.models import Dependency, Job
from queuectl_tui.engine.states import State
from queuectl_tui.errors import Conflict, NotFound, UsageError

# A dependency that ended so will never complete: its dependents can never run.
NEVER_COMPLETES = (State.DEAD, State.CANCELLED)


def check(specs: list[Any], ids: list[str], lock: str = "") -> dict[str, str]:
    """Validate the `after` lists of a batch whose jobs get `ids`; returns the
    initial state of each job that has dependencies ('pending' when all of them
    have completed already, else 'blocked'). Raises before anything is written.
    `lock` (the backend's share_rows) holds the named jobs until commit."""
    in_batch = set(ids)
    named = sorted({dep for spec in specs for dep in spec.after} - in_batch)
    stored = _states(named, lock)
    for dep in named:
        if stored.get(dep, State.STAGED) == State.STAGED:
            raise NotFound(f"--after names {dep!r}, which is no job; nothing was enqueued")
        if stored[dep] in NEVER_COMPLETES:
            raise Conflict(f"--after names {dep!r}, which ended {stored[dep]}: the job "
                           "would never run; nothing was enqueued")
    _refuse_cycles(specs, ids)
    initial = {}
    for spec, job_id in zip(specs, ids):
        if spec.after:
            waits = any(dep in in_batch or stored[dep] != State.COMPLETED
                        for dep in spec.after)
            initial[job_id] = State.BLOCKED if waits else State.PENDING
    return initial


def _states(ids: list[str], lock: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    db = Job._meta.database
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join([db.param] * len(chunk))
        found.update(db.execute_sql(f"SELECT id, state FROM job WHERE id IN ({marks}) "
                                    f"ORDER BY seq{lock}", chunk).fetchall())
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


def dependents(db: pw.Database, job_id: str, lock: str = "",
               states: tuple[str, ...] = (State.BLOCKED,)) -> list[Job]:
    """Jobs in `states` (blocked) that wait for `job_id` (the index on
    dependency.needs), in seq order, held until commit when `lock` (the
    backend's lock_rows) says so.

    Almost always finds nothing: a plain-SQL probe first (about 10 us), and only
    when a job has dependents the model query (building it with Peewee cost more
    than 100 us per job). A job ending on the workers' path does not get here
    unless the INSERT of its event found a dependency (transitions.move)."""
    if db.execute_sql(f"SELECT 1 FROM dependency WHERE needs = {db.param} LIMIT 1",
                      (job_id,)).fetchone() is None:
        return []
    query = (Job.select(Job.seq, Job.id, Job.state, Job.attempts, Job.run_at, Job.queue,
                        Job.unique_key, Job.unique_for)
             .where(Job.state.in_(list(states)), Job.id.in_(
                 Dependency.select(Dependency.job_id).where(Dependency.needs == job_id)))
             .order_by(Job.seq))
    return list(query.for_update() if lock else query)


def unmet(job_id: str) -> bool:
    """Does this job still wait for a dependency that has not completed? (One
    that is gone counts as completed: see the module's docstring.)"""
    return (Dependency.select(Dependency.seq)
            .join(Job, on=(Job.id == Dependency.needs))
            .where(Dependency.job_id == job_id, Job.state != State.COMPLETED)
            .exists())


def again(job_ids: list[str], together: set[str], lock: str = "",
          doing: str = "requeued") -> dict[str, str]:
    """Where finished jobs go when run again (requeue, DLQ retry): 'blocked' for
    each one with a dependency that has not completed (one run again in the
    same call, `together`, has not), else 'pending'. Refused (Conflict) before
    anything is written when a dependency ended dead or cancelled: the job could
    never run. `lock`: the backend's share_rows, as at enqueue."""
    links: list[tuple[str, str]] = []
    for start in range(0, len(job_ids), 500):
        links.extend(Dependency.select(Dependency.job_id, Dependency.needs)
                     .where(Dependency.job_id.in_(job_ids[start:start + 500]))
                     .order_by(Dependency.seq).tuples())
    states = _states(sorted({dep for _, dep in links} - together), lock)
    out = {job_id: State.PENDING for job_id in job_ids}
    for job_id, dep in links:
        state = "again" if dep in together else states.get(dep)
        if state in NEVER_COMPLETES:
            raise Conflict(f"job {job_id} waits for {dep}, which ended {state}: it would "
                           f"never run; nothing was {doing} (requeue {dep} with it, or first)")
        # gone (or no job yet): as if completed
        if state not in (None, State.COMPLETED, State.STAGED):
            out[job_id] = State.BLOCKED
    return out


def on_final(db: pw.Database, job_id: str, state: str, now: float,
             move: Callable[[Job, str, str, dict[str, Any]], bool], lock: str = "") -> None:
    """`job_id` just reached `state` (inside its transaction): release or cancel
    its blocked dependents. `move(job, to, note, fields)` is the queue's own
    transition, so every change is a move of the one state machine, with its event
    (and a cancelled dependent's own dependents follow through the same call).
    `lock`: the backend's lock_rows (see the module's docstring). A held
    dependent stays held when `job_id` completed, and is cancelled when it
    ended badly: see engine/hold.py."""
    waiting = (State.BLOCKED,) if state == State.COMPLETED else (State.BLOCKED, State.HELD)
    for dependent in dependents(db, job_id, lock, waiting):
        if state == State.COMPLETED:
            if not unmet(dependent.id):
                release(dependent, f"released: {job_id} completed", now, move)
        else:
            cancel(dependent, job_id, state, now, move)


def release(dependent: Job, note: str, now: float,
            move: Callable[[Job, str, str, dict[str, Any]], bool]) -> bool:
    """A blocked job whose dependencies have all completed becomes pending."""
    return move(dependent, State.PENDING, note, {"run_at": max(dependent.run_at, now)})


def cancel(dependent: Job, dep: str, state: str, now: float,
           move: Callable[[Job, str, str, dict[str, Any]], bool]) -> bool:
    """A blocked job whose dependency `dep` ended `state` (dead, cancelled,
    deleted) can never run: cancelled, naming it."""
    reason = (f"dependency {dep} was deleted" if state == "deleted"
              else f"dependency {dep} ended {state}")
    return move(dependent, State.CANCELLED, reason, {"last_error": reason, "finished_at": now})


# ---------------------------------------------------------------- the sweep

SWEEP_BATCH = 200  # blocked jobs looked at per call: a few index reads


def blocked_after(sql: str, after_seq: int, limit: int = SWEEP_BATCH) -> list[tuple[int, str]]:
    """(seq, id) of the next `limit` blocked jobs after `after_seq`: a range of
    the (state, seq) index, however many jobs the table holds. `sql`: the
    backend's blocked_page_sql."""
    db = Job._meta.database
    return [tuple(row) for row in
            db.execute_sql(sql.format(p=db.param), (after_seq, limit)).fetchall()]


Verdict = tuple[str, str | None, str | None]  # (new state, dependency, its state)


def verdicts(job_ids: list[str], lock: str = "") -> dict[str, Verdict]:
    """What should become of each of these blocked jobs, judged from their
    dependencies' states now: ('pending', None, None) when every one has
    completed or is gone, ('cancelled', dep, its state) when one ended dead or
    cancelled (the first such, in the order they were named). A job still
    waiting for an unfinished dependency is left out. `lock` (the backend's
    share_rows) holds the dependency rows until commit, in seq order."""
    if not job_ids:
        return {}
    db = Job._meta.database
    marks = ", ".join([db.param] * len(job_ids))
    links = db.execute_sql(f"SELECT job_id, needs FROM dependency WHERE job_id IN ({marks}) "
                           "ORDER BY seq", job_ids).fetchall()
    states = _states(sorted({dep for _, dep in links}), lock)
    out: dict[str, Verdict] = {}
    waiting: set[str] = set()
    for job_id, dep in links:
        state = states.get(dep)
        if state in NEVER_COMPLETES and out.get(job_id, ("",))[0] != State.CANCELLED:
            out[job_id] = (State.CANCELLED, dep, state)
        elif state not in (None, State.COMPLETED):
            waiting.add(job_id)
        elif job_id not in out:
            out[job_id] = (State.PENDING, None, None)
    return {job_id: v for job_id, v in out.items()
            if v[0] == State.CANCELLED or job_id not in waiting}


def on_release(job_ids: list[str], lock: str = "") -> dict[str, tuple[str, str | None]]:
    """Where each of these held jobs goes when released, and why: ('pending',
    None) when it waits for nothing unfinished, ('blocked', 'waits for X') while
    a dependency has not completed, ('cancelled', 'dependency X ended dead')
    when one ended dead or cancelled: the rule of `verdicts`. `lock`: the
    backend's share_rows, held until commit."""
    db = Job._meta.database
    linked: set[str] = set()
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start:start + 500]
        marks = ", ".join([db.param] * len(chunk))
        linked.update(row[0] for row in db.execute_sql(
            f"SELECT DISTINCT job_id FROM dependency WHERE job_id IN ({marks})", chunk))
    judged = verdicts([job_id for job_id in job_ids if job_id in linked], lock)
    out: dict[str, tuple[str, str | None]] = {}
    for job_id in job_ids:
        verdict = judged.get(job_id)
        if job_id not in linked or (verdict and verdict[0] == State.PENDING):
            out[job_id] = (State.PENDING, None)
        elif verdict is None:
            waits = [d["id"] for d in waiting_for(job_id)
                     if d["state"] not in (None, State.COMPLETED)]
            out[job_id] = (State.BLOCKED, "waits for " + ", ".join(waits[:3])
                           + (" …" if len(waits) > 3 else ""))
        else:
            out[job_id] = (State.CANCELLED, f"dependency {verdict[1]} ended {verdict[2]}")
    return out


def forget(job_ids: Iterable[str]) -> None:
    """Dependency rows of jobs that are gone (pruned or deleted)."""
    ids = list(job_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        Dependency.delete().where(Dependency.job_id.in_(chunk)).execute()
