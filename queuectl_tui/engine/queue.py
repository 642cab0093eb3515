"""Every queue operation and every job state change, in one place.

The faces (CLI, console) and the workers call these methods and nothing else
touches job rows. All state changes go through `_transition`, which checks the
move against the state machine, conditions the update on what the caller
believes (state, and for workers the claim token) and records the event in the
same transaction. The claim is the one change chosen by SQL (the next due
job), and it records its event through the same `events.record`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import peewee as pw

from queuectl_tui.clock import Clock, Ids, SyncedClock, iso
from queuectl_tui.engine import (attempts, batches, config, counts, dependencies, events, logs,
                                  procs, queues, registry, uniqueness)
from queuectl_tui.engine.storage.backends.base import HOOKS_CHANNEL
from queuectl_tui.engine.storage.columns import JOB_INSERT, LIST_FIELDS, QUEUE_COLUMN, Claimed
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.storage.opened import Opened
from queuectl_tui.engine.states import (FINAL, MOVES, STATES, WAITING, check_state,
                                        describe_state, state_named)
from queuectl_tui.errors import Conflict, DatabaseError, NotFound, UsageError

if TYPE_CHECKING:
    # Imported where used: the commands that only read (`status`, `list`) never
    # enqueue, finish or prune a job, and these three (with their regexes and
    # dataclasses) cost 3-4 ms of every start.
    from queuectl_tui.engine import hooks, retention
    from queuectl_tui.engine.jobspec import JobSpec

DEFAULT_GRACE_S = 10.0  # SIGTERM, then SIGKILL this much later (cancel, stop now)

# Getting the write lock for a rescue took longer than this: everyone was blocked.
BLOCKED_S = 1.0
# On this host, a live worker keeps a job whose lease ran out this many leases ago
# (it may be retrying its outcome through a full disk); past that it is wedged.
LIVE_WORKER_GRACE = 6

@dataclass(frozen=True)
class Outcome:
    """What recording a run led to: the job's new state (None: the claim had been
    lost), the next job already claimed (if asked for), and whether to stop."""

    state: str | None
    next: Claimed | None
    stop: bool
    retry_at: float | None = None  # state "failed": when it runs again (the pool's log)


@dataclass(frozen=True)
class Rescued:
    """A run taken back from a gone worker: what the pool's log says about it."""

    id: str
    worker_id: str | None  # the worker that held it
    attempt: int
    max_retries: int
    state: str  # where it went: pending, dead or cancelled
    note: str
    queue: str | None = None  # None before named queues


class RunAgain(list):
    """The ids a requeue or DLQ retry moved, in order (a plain list to callers
    that only count them), and `states`: where each went, 'pending' or 'blocked'
    (a job it waits for has not completed), for a face that says which."""

    def __init__(self, states: dict[str, str]) -> None:
        super().__init__(states)
        self.states = states


@dataclass(frozen=True)
class Lease:
    """What renewing a held job's lease found: whether it is still ours, and
    whether someone asked to cancel it (with the grace before SIGKILL)."""

    held: bool
    cancel_grace: float | None = None

    def __bool__(self) -> bool:
        return self.held


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
        "next_retry_at": iso(job.run_at) if job.state == "failed" else None,
        "cancel_requested_at": iso(job.cancel_requested_at),
        "cwd": job.cwd, "env": json.loads(job.env) if job.env else {},
        "schedule": job.schedule, "schedule_tick": iso(job.schedule_tick),
        "unique_key": job.unique_key, "no_retry_on": job.no_retry_on,
    }
    if with_output:
        data["stdout_tail"] = job.stdout_tail or ""
        data["stderr_tail"] = job.stderr_tail or ""
    return data


def current_host() -> str:
    """This host's name; QUEUECTL_HOSTNAME overrides it (containers, tests of many hosts)."""
    return os.environ.get("QUEUECTL_HOSTNAME") or socket.gethostname()


class Queue:
    """The engine's one entry point, bound to an open database, a clock and an id source."""

    def __init__(self, opened: Opened, clock: Clock | None = None, ids: Ids | None = None,
                 host: str | None = None, worker: bool = False) -> None:
        self.opened = opened
        self.db = opened.db
        self.backend = opened.backend
        if clock is None and self.backend.shared_by_hosts:
            clock = SyncedClock(self.backend.db_time)  # lease times on the server's clock
        self.clock = clock or Clock()
        self.ids = ids or Ids()
        self.host = host or current_host()
        self._sql_cache: dict[tuple[tuple[str, ...], bool], str] = {}
        self._durability = "full"  # how every connection opens (db.py)
        self._leases_trusted_from = 0.0  # monotonic; see rescue()
        # The queues this process claims from, earlier first (None: every queue).
        self.serving: list[str] | None = None
        self._hooks: hooks.HookConfig | None = None  # finish-hook commands, re-read once a second
        self._finished_now: list[tuple[str, str]] | None = None  # see _after_move
        if worker:
            self.apply_durability(config.get("durability"))

    def apply_durability(self, setting: str) -> None:
        """A worker's own bookkeeping (claims, outcomes) need not wait for the
        disk under `durability normal`: lost in a power cut, it only means a job
        runs again, which at-least-once allows. Everyone else's commits
        (enqueue, retry, config, ...) stay FULL: what a person was told is saved,
        is. Workers call this on every config reload, so a change applies live."""
        if self.backend.name != "sqlite" or setting == self._durability:
            return
        # permanent: also applied when the connection is reopened
        self.db.pragma("synchronous", "NORMAL" if setting == "normal" else "FULL",
                       permanent=True)
        self._durability = setting

    # ---------------------------------------------------------------- state changes

    def _transition(self, job: Job, to: str, *, token: str | None = None,
                    worker_id: str | None = None, note: str | None = None,
                    **fields: Any) -> bool:
        """Move `job` from the state the caller saw to `to`; False if it had moved on.

        Must run inside a write transaction. The WHERE clause carries the caller's
        belief (state, claim token), so a stale caller changes nothing.
        """
        if to not in MOVES[job.state]:
            raise Conflict(f"job {job.id} is {describe_state(job.state)}; it cannot become {to}")
        now = self.clock.now()
        names = tuple(fields)
        params = [to, now, *fields.values(), job.seq, job.state]
        if token is not None:
            params.append(token)
        cursor = self.db.execute_sql(self._update_sql(names, token is not None), params)
        if cursor.rowcount != 1:
            return False
        if to == "pending":
            self.backend.notify()
        waited_for = events.record(job.id, job.state, to, at=now, attempt=job.attempts,
                                   exit_code=fields.get("exit_code"), worker_id=worker_id,
                                   note=note, ask_waited_for=to in FINAL)
        self._after_move(job, to, now, fields.get("exit_code"), waited_for)
        return True

    def _after_move(self, job: Job, to: str, now: float, exit_code: int | None,
                    waited_for: bool) -> None:
        """What a move sets off, in its own transaction. Reaching a final state:
        blocked dependents released or cancelled (if `waited_for`: some job names
        this one in `after`), the unique key let go, the finish hook queued.
        (Leaving one, the caller takes the key again: _run_all_again.) Dependents
        are worked through a list, not by recursion: a cancelled chain of
        thousands of jobs is one loop."""
        if to not in FINAL:
            return
        queue_name, key, keep = self._final_info(job)
        if key:
            uniqueness.release(job.id, key, keep, now)
        from queuectl_tui.engine import hooks
        self._hooks = (self._hooks or hooks.HookConfig()).fresh()
        command = self._hooks.command_for(queue_name)
        if command:
            hooks.record(command, job_id=job.id, state=to, exit_code=exit_code,
                         queue=queue_name, attempt=job.attempts, now=now)
            self.backend.notify(HOOKS_CHANNEL)
        if not waited_for:
            return
        if self._finished_now is not None:  # inside the loop below: it takes this too
            self._finished_now.append((job.id, to))
            return
        self._finished_now = [(job.id, to)]
        try:
            while self._finished_now:
                job_id, state = self._finished_now.pop(0)
                dependencies.on_final(self.db, job_id, state, now, self._move_dependent,
                                      self.backend.lock_rows)
        finally:
            self._finished_now = None

    def _move_dependent(self, job: Job, to: str, note: str, fields: dict[str, Any]) -> bool:
        return self._transition(job, to, note=note, **fields)

    def release_stuck(self, after_seq: int = 0, limit: int = dependencies.SWEEP_BATCH
                      ) -> tuple[list[tuple[str, str]], int]:
        """Settle blocked jobs that nothing will ever release (older versions
        could leave them so on PostgreSQL, see engine/dependencies.py): every
        dependency completed or gone, pending; one ended dead or cancelled,
        cancelled naming it, by the same moves as the normal path. Looks at the
        next `limit` blocked jobs after `after_seq`, with one read, and writes
        only for those it settles. Returns what moved (id, new state) and the
        seq to go on after (0: it reached the last blocked job)."""
        batch = dependencies.blocked_after(self.backend.blocked_page_sql, after_seq, limit)
        stuck = dependencies.verdicts([job_id for _, job_id in batch])
        moved = []
        for seq, job_id in batch:
            if job_id in stuck:
                to = self._settle_stuck(seq, job_id)
                if to:
                    moved.append((job_id, to))
        return moved, (batch[-1][0] if len(batch) == limit else 0)

    def _settle_stuck(self, seq: int, job_id: str) -> str | None:
        """Judge one stuck job again inside a write transaction, its dependencies
        held FOR SHARE and then itself FOR UPDATE (PostgreSQL; the seq order of
        engine/dependencies.py), so a dependency finishing or an operator acting
        meanwhile is seen, never overwritten. The new state, or None."""
        with self.db.atomic():
            verdict = dependencies.verdicts([job_id], self.backend.share_rows).get(job_id)
            job = self._locked_job(seq) if verdict else None
            if verdict is None or job is None or job.state != "blocked":
                return None
            to, dep, state = verdict
            now = self.clock.now()
            if to == "pending":
                done = dependencies.release(job, "released: every dependency had completed "
                                            "(found stuck)", now, self._move_dependent)
            else:
                done = dependencies.cancel(job, dep, state, now, self._move_dependent)
            return to if done else None

    def _final_info(self, job: Job) -> tuple[str, str | None, float | None]:
        """(queue, unique key, unique_for) of a job, from the row if the caller
        loaded only a few columns (the worker's path has them from its claim)."""
        if "queue" in job.__data__ and "unique_key" in job.__data__:
            return job.queue, job.unique_key, job.unique_for
        row = Job.select(Job.queue, Job.unique_key, Job.unique_for).where(
            Job.seq == job.seq).tuples().first()
        return row if row else (queues.DEFAULT, None, None)

    def _update_sql(self, names: tuple[str, ...], with_token: bool) -> str:
        """The conditional UPDATE for these fields, built once: on the hot path
        (every claim and finish) Peewee's query builder cost more than SQLite."""
        key = (names, with_token)
        sql = self._sql_cache.get(key)
        if sql is None:
            p = self.db.param
            sets = "".join(f", {Job._meta.fields[n].column_name} = {p}" for n in names)
            sql = (f"UPDATE job SET state = {p}, updated_at = {p}{sets} "
                   f"WHERE seq = {p} AND state = {p}"
                   + (f" AND claim_token = {p}" if with_token else ""))
            self._sql_cache[key] = sql
        return sql

    # ---------------------------------------------------------------- enqueue

    def enqueue(self, spec: JobSpec, default_cwd: str | None = None) -> dict[str, Any]:
        """Add one job; returns its public shape as enqueued (as `show --json`
        prints it), read in the enqueue's transaction: a worker may claim and
        even finish it the moment that commits."""
        written: list[dict[str, Any]] = []
        self.enqueue_many([spec], default_cwd, written=written)
        return written[0]

    def enqueue_many(self, specs: list[JobSpec], default_cwd: str | None = None,
                     written: list[dict[str, Any]] | None = None) -> list[str]:
        """Insert all or nothing; returns the ids. A duplicate id (in the batch or
        already stored) refuses the lot. Jobs that name no directory run in
        `default_cwd` (the CLI passes the one it was started in). `written`, for
        a small batch, gets each job's shape as inserted."""
        staged = len(specs) > batches.SLICE_ROWS  # too big for one short transaction
        rows = self._rows(specs, default_cwd)
        now = self.clock.now()  # when it was enqueued here (a job object may bring older times)
        given = [s.id for s in specs if s.id is not None]
        seen: set[str] = set()
        for job_id in given:
            if job_id in seen:
                raise UsageError(f"duplicate job id {job_id!r} in the input")
            seen.add(job_id)
        named = {row[QUEUE_COLUMN] for row in rows}
        special = any(s.after or s.unique_key for s in specs)
        if staged and special:
            raise UsageError(f"after and unique_key work in files of up to "
                             f"{batches.SLICE_ROWS:,} jobs; split the file")
        if staged:
            with self.db.atomic():
                queues.ensure(named, now)
            ids = batches.enqueue_staged(self, rows, JOB_INSERT, given)
        else:
            with self.db.atomic():
                queues.ensure(named, now)
                self.refuse_taken_ids(given)
                if special:
                    rows = self._with_rules(specs, rows, now)
                self.insert_job_rows(JOB_INSERT, rows)
                self.backend.notify()
                self.backend.insert_rows("event", ("job_id", "to_state", "at", "attempt"),
                                         [(r[0], r[2], now, 0) for r in rows])
                if written is not None:
                    written.extend(self.job_dict(r[0]) for r in rows)
            ids = [r[0] for r in rows]
        lost = self.backend.lost_writes()
        if lost:
            raise DatabaseError(f"{lost}: the enqueue may be lost; stop every queuectl "
                                "process on this database and check it")
        return ids

    def _with_rules(self, specs: list[JobSpec], rows: list[tuple], now: float) -> list[tuple]:
        """Dependencies and unique keys, checked and written in the enqueue's own
        transaction; jobs that wait for others start `blocked`."""
        ids = [row[0] for row in rows]
        initial = dependencies.check(specs, ids, self.backend.share_rows)
        uniqueness.take(self.db, specs, ids, now)
        links = dependencies.rows(specs, ids)
        if links:
            self.backend.insert_rows("dependency", ("job_id", "needs"), links)
        return [(row[0], row[1], initial.get(row[0], row[2]), *row[3:]) for row in rows]

    def refuse_taken_ids(self, ids: list[str]) -> None:
        """Conflict if any of these ids is taken (inside the caller's transaction);
        rows a dead bulk enqueue left holding one are cleared first."""
        batches.free_ids(self, ids)

    def insert_job_rows(self, columns: tuple[str, ...], rows: list[tuple]) -> None:
        try:
            self.backend.insert_rows("job", columns, rows)
        except pw.IntegrityError:
            # Another process took one of these ids between our check and insert.
            raise Conflict("a job with one of these ids already exists; "
                           "nothing was enqueued") from None

    def recover_batches(self) -> None:
        """Finish or remove what dead bulk enqueues left (workers call this)."""
        batches.recover(self)

    def _rows(self, specs: list[JobSpec], default_cwd: str | None = None) -> list[tuple]:
        """Row tuples in JOB_INSERT order, with config defaults filled in now."""
        defaults = config.get_all()
        retries, default_timeout = defaults["max-retries"], defaults["job-timeout"]
        no_retry = defaults["no-retry-on"] or None
        now = self.clock.now()
        new_ids = iter(self.ids.many(sum(1 for spec in specs if spec.id is None)))
        rows = []
        for spec in specs:
            run_at = spec.run_at if spec.run_at is not None else now + (spec.delay or 0.0)
            timeout = spec.timeout if spec.timeout is not None else default_timeout
            created = now if spec.created_at is None else spec.created_at
            rows.append((spec.id or next(new_ids), spec.command, "pending", 0,
                         retries if spec.max_retries is None else spec.max_retries,
                         spec.priority, run_at, float(timeout) if timeout else None, created,
                         created if spec.updated_at is None else spec.updated_at,
                         spec.cwd or default_cwd,
                         None if not spec.env else json.dumps(spec.env),
                         spec.queue or queues.DEFAULT, spec.schedule, spec.schedule_tick,
                         spec.unique_key, spec.unique_for,
                         no_retry if spec.no_retry_on is None else spec.no_retry_on or None))
        return rows

    # ---------------------------------------------------------------- workers' side

    def claim(self, worker_id: str, lease_seconds: float) -> Claimed | None:
        """Atomically take the next due job (priority, then run_at, then age)."""
        with self.db.atomic():
            now = self.clock.now()  # once the write lock is held
            claimed = self._claim(worker_id, lease_seconds, now)
            if claimed is not None:  # same commit: no extra write
                registry.working(worker_id, now=now, job_id=claimed.id)
            return claimed

    def _claim(self, worker_id: str, lease_seconds: float, now: float) -> Claimed | None:
        """Take the next job; the caller writes the worker row (registry.working)."""
        token = os.urandom(8).hex()
        serving = queues.claimable(self.db, self.serving,
                                   lock=self.backend.lock_limited_claims)
        if self.serving is None:  # every queue: one global order (priority, due, age)
            serving = self.backend.by_head(serving, now)
        claimed = self.backend.claim(now, worker_id, token, now + lease_seconds, self.host,
                                     serving)
        if claimed is not None:
            events.record(claimed.id, claimed.prev_state, "processing", at=now,
                          attempt=claimed.attempts, worker_id=worker_id)
        return claimed

    def has_due_job(self) -> bool:
        """A read-only look, so idle workers do not take the write lock for nothing.
        Only queues this process may claim from now count: a paused or full
        queue's due jobs must not wake it again and again."""
        return self.backend.has_due_job(self.clock.now(), queues.claimable(self.db, self.serving))

    def next_run_at(self) -> float | None:
        return self.backend.next_run_at(queues.claimable(self.db, self.serving))

    def extend_lease(self, claimed: Claimed, lease_seconds: float,
                     pid: int | None = None) -> Lease:
        """Heartbeat for a held job: still ours? asked to cancel?

        `pid` is the job's process group, so a rescuer can kill leftovers. It is
        written with the first lease extension (50 ms into the run), not at start:
        most jobs finish sooner and never pay for that write. The same statement
        reads the cancel request, so a cancel reaches the worker within a beat,
        on any host.
        """
        p = self.db.param
        rows = self.db.execute_sql(
            f"UPDATE job SET lease_expires_at = {p}, run_pid = COALESCE({p}, run_pid) "
            f"WHERE seq = {p} AND claim_token = {p} AND state = 'processing' "
            "RETURNING cancel_requested_at, cancel_grace",
            (self.clock.now() + lease_seconds, pid, claimed.seq, claimed.claim_token)).fetchall()
        if not rows:
            return Lease(held=False)
        requested, grace = rows[0]
        if requested is None:
            return Lease(held=True)
        return Lease(held=True, cancel_grace=DEFAULT_GRACE_S if grace is None else grace)

    def finish(self, claimed: Claimed, worker_id: str, *, exit_code: int | None,
               error: str | None, stdout_tail: str = "", stderr_tail: str = "",
               ended: str = "exit") -> str | None:
        """Record a run's outcome; returns the new state, or None if the claim was lost."""
        return self.finish_and_claim(claimed, worker_id, exit_code=exit_code, error=error,
                                     stdout_tail=stdout_tail, stderr_tail=stderr_tail,
                                     ended=ended).state

    def finish_and_claim(self, claimed: Claimed, worker_id: str, *, exit_code: int | None,
                         error: str | None, stdout_tail: str = "", stderr_tail: str = "",
                         next_lease: float | None = None, ended: str = "exit",
                         started_at: float | None = None,
                         log_offset: int | None = None) -> Outcome:
        """Record a run's outcome and, with `next_lease`, claim the next job in the
        same transaction: a busy worker pays one commit (one fsync) per job, and
        reads its stop flag there too (a stopping worker claims nothing).

        `ended` says how the run ended (attempts.REASONS): "cancelled" ends the
        job cancelled, "stopped" (its worker was stopped now) puts it back in
        the queue with this attempt not counted; otherwise the exit decides.
        """
        now = self.clock.now()
        job = self._held(claimed)
        outcome = dict(finished_at=now, exit_code=exit_code, lease_expires_at=None,
                       stdout_tail=stdout_tail, stderr_tail=stderr_tail, run_pid=None)
        with self.db.atomic():
            to, fields = self._outcome(job, error, ended, now, exit_code)
            ok = self._transition(job, to, token=claimed.claim_token, worker_id=worker_id,
                                  note=error, **{**outcome, **fields})
            if ok:
                attempts.record(claimed.id, claimed.runs, started_at=started_at, ended_at=now,
                                exit_code=exit_code, reason=ended, error=error,
                                worker_id=worker_id, host=self.host, log_offset=log_offset)
            # The claim takes nothing from a worker asked to stop (its SQL reads
            # the flag); the worker row is then written once, busy or idle.
            following = None if next_lease is None else \
                self._claim(worker_id, next_lease, now)
            stop = registry.working(worker_id, now=now,
                                    job_id=following.id if following else None,
                                    done=int(ok and error is None),
                                    failed=int(ok and error is not None))
        return Outcome(to if ok else None, following, stop,
                       fields.get("run_at") if ok and to == "failed" else None)

    def release(self, claimed: Claimed, worker_id: str) -> bool:
        """Give back a job claimed with the last outcome but never started, because
        the worker is stopping: pending again, its attempt not counted."""
        with self.db.atomic():
            return self._transition(
                self._held(claimed), "pending", token=claimed.claim_token,
                worker_id=worker_id, note="handed back unstarted: worker stopping",
                attempts=claimed.attempts - 1, lease_expires_at=None, started_at=None,
                claim_token=None)

    def _outcome(self, job: Job, error: str | None, ended: str, now: float,
                 exit_code: int | None = None) -> tuple[str, dict[str, Any]]:
        if ended == "cancelled":
            return "cancelled", {"last_error": error}
        if ended == "stopped":  # not the job's fault: not counted against its budget
            return "pending", {"last_error": error, "attempts": job.attempts - 1,
                               "run_at": now, "finished_at": None}  # overrides the outcome's
        if error is None:
            return "completed", {"last_error": None}
        rule = not_retried(job.no_retry_on, exit_code, ended)
        if rule:
            return "dead", {"last_error": f"{error} (not retried: {rule})"}
        to, fields = self._after_failure(job, now)
        fields["last_error"] = error
        return to, fields

    def _held(self, claimed: Claimed) -> Job:
        return Job(seq=claimed.seq, id=claimed.id, state="processing",
                   attempts=claimed.attempts, max_retries=claimed.max_retries,
                   queue=claimed.queue, unique_key=claimed.unique_key,
                   unique_for=claimed.unique_for, no_retry_on=claimed.no_retry_on)

    def _after_failure(self, job: Job, now: float) -> tuple[str, dict[str, Any]]:
        """Retry with backoff while retries remain; otherwise the DLQ."""
        if job.attempts > job.max_retries:
            return "dead", {}
        delay = min(float(config.get("backoff-base")) ** job.attempts,
                    float(config.get("backoff-max")))
        return "failed", {"run_at": now + delay}

    def rescue(self, worker_id: str | None = None, *, counted: bool = True) -> list[str]:
        """The ids of the jobs `rescue_runs` took back."""
        return [run.id for run in self.rescue_runs(worker_id, counted=counted)]

    def rescue_runs(self, worker_id: str | None = None, *,
                    counted: bool = True) -> list[Rescued]:
        """Take back jobs whose worker is gone: lease expired, or `worker_id` known dead.

        A rescue counts as an attempt (a job that kills its worker ends in the DLQ);
        otherwise the job is pending again at once, not after a backoff, so the
        worst-case recovery is the lease plus one scan.

        `counted=False` (the pool was stopped by force: its workers were killed on
        purpose) puts the jobs back without counting the attempt. A job someone
        asked to cancel ends cancelled, not back in the queue.

        A lease is only evidence. Before acting, the rescuer takes the write lock
        and looks again with a fresh clock; if getting the lock took long, every
        lease holder was blocked as well (a long writer, a full disk), so leases
        are not judged until one more lease period has passed. On this host a
        worker whose process is alive keeps its job, whatever its lease says.
        """
        if worker_id is None and self.clock.monotonic() < self._leases_trusted_from:
            return []
        lease = float(config.get("lease-seconds"))
        query = Job.select(Job.seq).where(Job.state == "processing")
        if worker_id is None:
            query = query.where(Job.lease_expires_at < self.clock.now())
        else:
            query = query.where(Job.worker_id == worker_id)
        rescued = []
        for (seq,) in list(query.tuples()):
            outcome = self._rescue_one(seq, worker_id, lease, counted)
            if outcome is None:
                break  # blocked: leases are not trusted for a while
            if outcome:
                rescued.append(outcome)
        return rescued

    def _rescue_one(self, seq: int, dead_worker: str | None, lease: float,
                    counted: bool = True) -> Rescued | str | None:
        """Rescue one job if it still needs it: what was done, "" if not, None if blocked."""
        asked = self.clock.monotonic()
        try:
            with self.db.atomic():
                job = self._locked_job(seq)
                # A slow lock makes leases doubtful; a worker known dead is not.
                if dead_worker is None and self.clock.monotonic() - asked > BLOCKED_S:
                    self.distrust_leases(lease)
                    return None
                if job is None or job.state != "processing" or not self._needs_rescue(
                        job, dead_worker, lease):
                    return ""
                return self._take_back(job, dead_worker, counted)
        except pw.OperationalError:
            self.distrust_leases(lease)  # could not even get the lock
            raise

    def _locked_job(self, seq: int) -> Job | None:
        """The job row, locked until commit (PostgreSQL: SELECT … FOR UPDATE)."""
        rows = list(Job.raw(f"SELECT * FROM job WHERE seq = {self.db.param}"
                            f"{self.backend.lock_rows}", seq))
        return rows[0] if rows else None

    def _needs_rescue(self, job: Job, dead_worker: str | None, lease: float) -> bool:
        if dead_worker is not None:
            return job.worker_id == dead_worker
        now = self.clock.now()
        if job.lease_expires_at is None or job.lease_expires_at >= now:
            return False  # renewed while we waited for the lock
        if job.run_host == self.host and now - job.lease_expires_at < LIVE_WORKER_GRACE * lease:
            return not procs.worker_alive(registry.pid_of(job.worker_id), job.worker_id)
        return True

    def _take_back(self, job: Job, dead_worker: str | None,
                   counted: bool = True) -> Rescued | str:
        """Kill what is left of the run on this host, then pending again (or dead,
        or cancelled if someone asked), with the run's attempt record."""
        now = self.clock.now()
        self._kill_leftovers(job)
        note = f"worker {job.worker_id} died" if dead_worker is not None \
            else f"worker {job.worker_id} lost; lease expired"
        fields: dict[str, Any] = {"run_at": now}
        if job.cancel_requested_at is not None:
            to, note, fields = "cancelled", f"cancelled ({note})", {"finished_at": now}
        elif not counted:
            to, note = "pending", f"{note} (stopped now; attempt not counted)"
            fields["attempts"] = job.attempts - 1
        elif job.attempts > job.max_retries:
            to, fields = "dead", {"finished_at": now}
        else:
            to = "pending"
        moved = self._transition(job, to, token=job.claim_token, worker_id=job.worker_id,
                                 note=note, last_error=note, lease_expires_at=None,
                                 run_pid=None, **fields)
        if not moved:
            return ""
        attempts.record(job.id, job.runs, started_at=job.started_at, ended_at=now,
                        exit_code=None, reason="rescued", error=note, worker_id=job.worker_id,
                        host=job.run_host, log_offset=None)
        return Rescued(job.id, job.worker_id, job.attempts, job.max_retries, to, note,
                       getattr(job, "queue", None))

    def distrust_leases(self, lease: float) -> None:
        """This process just waited long for the database (or could not write at
        all): so, most likely, did every lease holder. Judge no lease until they
        have had one whole lease period to renew."""
        self._leases_trusted_from = self.clock.monotonic() + lease

    def _kill_leftovers(self, job: Job) -> None:
        """Kill the dead worker's command, if it ran here, so two runs never overlap:
        its recorded process group, and every process carrying the claim's marker."""
        if job.run_host != self.host:
            return
        groups = {job.run_pid} if job.run_pid else set()
        if job.claim_token:
            for pid in procs.processes_of_claim(job.claim_token):
                try:
                    groups.add(os.getpgid(pid))
                except ProcessLookupError:
                    pass
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    # ---------------------------------------------------------------- reading

    def job_dict(self, job_id: str) -> dict[str, Any]:
        """A job's public shape, with what it waits for when it was enqueued --after."""
        data = job_dict(self.get(job_id))
        data["after"] = self.waiting_for(job_id)
        return data

    def unique_holder(self, key: str, job_id: str) -> dict[str, Any]:
        """What `enqueue --if-absent` answers with: the job holding `key`, or, once
        that job was pruned while its --unique-for still holds the key, its id
        with `state` null, `pruned` true and when the key lapses."""
        try:
            return self.job_dict(job_id)
        except NotFound:
            lock = uniqueness.lock_of(key)
            return {"id": job_id, "state": None, "pruned": True, "unique_key": key,
                    "unique_until": iso(lock.until) if lock else None}

    def waiting_for(self, job_id: str) -> list[dict[str, Any]]:
        """The jobs this one was enqueued --after, each with its state now."""
        return dependencies.waiting_for(job_id)

    def needed_by(self, job_id: str) -> list[dict[str, Any]]:
        """The jobs enqueued --after this one, each with its state now."""
        return dependencies.needed_by(job_id)

    def get(self, job_id: str) -> Job:
        from queuectl_tui.engine.jobspec import check_id
        check_id(job_id)
        job = Job.get_or_none(Job.id == job_id)
        if job is None or job.state == "staged":  # a bulk enqueue not yet done
            raise NotFound(f"no job with id {job_id!r}")
        return job

    def jobs(self, state: str | Iterable[str] | None = None, limit: int | None = None,
             after_seq: int | None = None, queue: str | None = None) -> Iterator[Any]:
        """Jobs oldest first, streamed (never capped unless `limit` is given), as
        read-only named tuples: twice as fast as model instances for big listings.
        `state` is one state or several."""
        query = Job.select(*LIST_FIELDS)
        if state is None:
            query = query.where(Job.state != "staged")
        elif isinstance(state, str):
            query = query.where(Job.state == check_state(state))
        elif state is not None:
            query = query.where(Job.state.in_([check_state(st) for st in state]))
        if after_seq is not None:
            query = query.where(Job.seq > after_seq)
        if queue is not None:
            query = query.where(Job.queue == queues.check_name(queue))
        query = query.order_by(Job.seq)
        if limit is not None:
            query = query.limit(limit)
        return query.namedtuples().iterator()

    def finished(self, job_ids: list[str]) -> dict[str, Job]:
        """Which of these jobs have finished (completed, dead, cancelled): one
        cheap query, for `wait` and `logs --follow` to poll."""
        found: dict[str, Job] = {}
        for chunk in _chunks(job_ids, 500):
            for job in Job.select(Job.id, Job.state, Job.exit_code, Job.last_error).where(
                    Job.id.in_(chunk), Job.state.in_(FINAL)):
                found[job.id] = job
        return found

    def counts(self, queue: str | None = None) -> dict[str, int]:
        """Jobs per state, in the whole database or one queue. The whole
        database's come from the stored count followed through the event log
        (engine/counts.py), not from reading every row."""
        if queue is not None:
            return counts.count_states(queues.check_name(queue))
        return counts.current(self)

    def workers(self, include_stopped: bool = False) -> list[dict[str, Any]]:
        """Live workers and those gone within the hour; with `include_stopped`, all."""
        lease = float(config.get("lease-seconds"))
        now = self.clock.now()
        return [registry.worker_dict(w, now=now, lease=lease)
                for w in registry.all_workers(include_stopped=include_stopped, now=now)]

    def stranded(self, job_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Processing jobs (all, or these) whose worker is gone, with a note of
        when they will be rescued (registry.stranded)."""
        return registry.stranded(now=self.clock.now(), lease=float(config.get("lease-seconds")),
                                 host=self.host, job_ids=job_ids)

    def hidden_gone_workers(self) -> int:
        """Workers gone longer ago than `workers()` shows (pruned after a day)."""
        return registry.count_hidden_gone(now=self.clock.now())

    def any_worker_alive(self) -> bool:
        """Whether any worker, on any host, would run what is enqueued now."""
        return registry.any_live(now=self.clock.now(), lease=float(config.get("lease-seconds")))

    def live_workers(self) -> list[dict[str, Any]]:
        return [w for w in self.workers() if w["state"] in registry.LIVE_STATES]

    def stop_workers(self, worker_ids: list[str] | None = None,
                     now_grace: float | None = None, host: str | None = None,
                     pool: int | None = None) -> list[str]:
        """Ask live workers (all, or these, or those of `host`, or of the pool
        whose supervisor pid is `pool`) to stop after their current job, or,
        with `now_grace`, now: the running job gets SIGTERM, SIGKILL after the
        grace, and goes back to the queue with its attempt not counted.

        The flag in the database reaches workers on every host at their next
        heartbeat (within a second, running or idle); on this host the
        supervisor (or lone worker) also gets SIGTERM, which it treats as a
        graceful stop, so the stop starts at once.
        """
        flagged = registry.request_stop(now=self.clock.now(),
                                        lease=float(config.get("lease-seconds")),
                                        worker_ids=worker_ids, grace=now_grace,
                                        host=host, pool=pool)
        signalled: set[int] = set()
        for w in flagged:
            pid = w.supervisor_pid or w.pid
            if w.host == self.host and pid not in signalled:
                if worker_ids is not None and w.supervisor_pid:
                    continue  # one worker of a pool: its flag is enough, spare its siblings
                try:
                    os.kill(pid, signal.SIGTERM)
                    signalled.add(pid)
                except (ProcessLookupError, PermissionError):
                    pass
        return [w.id for w in flagged]

    def attempts(self, job_id: str) -> list[dict[str, Any]]:
        """Every recorded run of a job (its number counts the job's whole life)."""
        return attempts.for_job(job_id)

    def history(self, job_id: str | None = None, limit: int | None = None,
                before_seq: int | None = None) -> Iterator[dict[str, Any]]:
        return events.history(job_id, limit, before_seq=before_seq)

    def log_size(self, job: Job) -> int:
        return logs.log_size(self.opened.log_dir, job.seq)

    def read_log_range(self, job: Job, start: int, length: int) -> bytes:
        """At most `length` bytes of the job's log from `start` (a bounded read)."""
        return logs.read_range(self.opened.log_dir, job.seq, start, length)

    # ---------------------------------------------------------------- operator actions

    def retry_dead(self, job_ids: Iterable[str]) -> RunAgain:
        """DLQ retry: back to pending now (blocked while a job it waits for has not
        completed), attempts reset, all or nothing."""
        ids = _unique(job_ids)
        with self.db.atomic():
            jobs = [self.get(job_id) for job_id in ids]
            for job in jobs:
                if job.state != "dead":
                    raise Conflict(f"job {job.id} is {describe_state(job.state)}, not dead; "
                                   "only dead jobs can be retried from the DLQ")
            return self._run_all_again(jobs, "retried from the DLQ", "retried")

    def retry_all_dead(self, queue: str | None = None) -> RunAgain:
        with self.db.atomic():
            query = Job.select(Job.seq, Job.id, Job.state, Job.attempts).where(
                Job.state == "dead")
            if queue is not None:
                query = query.where(Job.queue == queues.check_name(queue))
            jobs = list(query.order_by(Job.seq))
            return self._run_all_again(jobs, "retried from the DLQ", "retried")

    def cancel(self, job_ids: Iterable[str], grace: float = DEFAULT_GRACE_S) -> list[tuple[str, str]]:
        """Cancel unfinished jobs, all or nothing; returns (id, what happened) pairs.

        A waiting job is `cancelled` at once. A running one is marked; its worker
        (on any host) reads the mark with its next lease renewal, within a
        second, sends SIGTERM to the job's process group, SIGKILL after `grace`,
        and records it `cancelled`: that job's answer is "stopping". Every move
        is conditioned on the state read, so a job claimed between our read and
        our write is seen running and stopped, never reported cancelled while
        it runs.
        """
        ids = _unique(job_ids)
        for _ in range(5):
            try:
                with self.db.atomic():
                    jobs = [self.get(job_id) for job_id in ids]
                    for job in jobs:
                        if job.state in FINAL:
                            raise Conflict(f"job {job.id} is {describe_state(job.state)}; "
                                           "there is nothing to cancel (requeue runs it again)")
                    return [(job.id, self._cancel_one(job, grace)) for job in jobs]
            except _Moved:
                continue  # a job changed state under us: read again, decide again
        raise Conflict("the jobs kept changing state; nothing was cancelled, try again")

    def _cancel_one(self, job: Job, grace: float) -> str:
        now = self.clock.now()
        if job.state in WAITING:
            if not self._transition(job, "cancelled", note="cancelled",
                                    last_error="cancelled", finished_at=now):
                raise _Moved()
            return "cancelled"
        if job.cancel_requested_at is not None:
            return "stopping"  # asked already: the first request's grace stands
        p = self.db.param
        cursor = self.db.execute_sql(
            f"UPDATE job SET cancel_requested_at = {p}, cancel_grace = {p}, updated_at = {p} "
            f"WHERE seq = {p} AND state = 'processing' AND claim_token = {p}",
            (now, grace, now, job.seq, job.claim_token))
        if cursor.rowcount != 1:
            raise _Moved()
        events.record(job.id, "processing", "processing", at=now, attempt=job.attempts,
                      worker_id=job.worker_id,
                      note=f"cancel requested: SIGTERM, then SIGKILL after {grace:g} s")
        return "stopping"

    def requeue(self, job_ids: Iterable[str]) -> RunAgain:
        """Run finished jobs (completed, dead, cancelled) again as the same jobs,
        all or nothing: the retry budget starts afresh, earlier attempts stay."""
        ids = _unique(job_ids)
        with self.db.atomic():
            jobs = [self.get(job_id) for job_id in ids]
            for job in jobs:
                if job.state not in FINAL:
                    raise Conflict(f"job {job.id} is {describe_state(job.state)}; only "
                                   "completed, dead or cancelled jobs can be requeued")
            return self._run_all_again(jobs, "requeued", "requeued")

    def requeue_all(self, state: str) -> RunAgain:
        state = state_named(state) or state
        if state not in FINAL:
            raise UsageError(f"--all-state takes one of {', '.join(FINAL)}, got {state!r}")
        with self.db.atomic():
            jobs = list(Job.select(Job.seq, Job.id, Job.state, Job.attempts)
                        .where(Job.state == state).order_by(Job.seq))
            return self._run_all_again(jobs, "requeued", "requeued")

    def _run_all_again(self, jobs: list[Job], note: str, doing: str) -> RunAgain:
        """Requeue or DLQ-retry these finished jobs, all or nothing (inside the
        caller's transaction): each goes back to pending, or to blocked while a
        dependency has not completed; refused (Conflict, exit 4) if a dependency
        ended dead or cancelled or another job holds its unique key."""
        targets = dependencies.again([job.id for job in jobs], {job.id for job in jobs},
                                     self.backend.share_rows, doing)
        now = self.clock.now()
        for job in jobs:
            key = self._final_info(job)[1]
            if key:
                uniqueness.take_again(self.db, job.id, key, now, doing)
            if not self._transition(job, targets[job.id], note=note, attempts=0, run_at=now,
                                    finished_at=None, claim_token=None,
                                    cancel_requested_at=None, cancel_grace=None):
                raise Conflict(f"job {job.id} changed state meanwhile; nothing was {doing}")
        return RunAgain({job.id: targets[job.id] for job in jobs})

    def delete(self, job_ids: Iterable[str]) -> list[str]:
        """Remove jobs that are not running, with their logs; all or nothing.

        The DELETE is conditioned on the state each job was read in, in the
        same statement: a job claimed meanwhile is not deleted, and then
        nothing is (its outcome would otherwise be thrown away).
        """
        ids = _unique(job_ids)
        with self.db.atomic():
            jobs = [self.get(job_id) for job_id in ids]
            for job in jobs:
                if job.state == "processing":
                    raise Conflict(f"job {job.id} is {describe_state(job.state)}; cancel it "
                                   "first or wait for it")
            self._delete_rows(jobs, note="deleted")
        for job in jobs:
            logs.remove_log(self.opened.log_dir, job.seq)
        return ids

    def purge_dead(self) -> list[str]:
        with self.db.atomic():
            jobs = list(Job.select(Job.seq, Job.id, Job.state, Job.attempts)
                        .where(Job.state == "dead"))
            self._delete_rows(jobs, note="purged from the DLQ")
        for job in jobs:
            logs.remove_log(self.opened.log_dir, job.seq)
        return [job.id for job in jobs]

    def _delete_rows(self, jobs: list[Job], *, note: str) -> None:
        """Delete these rows if each is still in the state read; else none (Conflict)."""
        now = self.clock.now()
        for chunk in _chunks(jobs, 500):
            for state in {j.state for j in chunk}:
                seqs = [j.seq for j in chunk if j.state == state]
                gone = list(Job.delete().where(Job.seq.in_(seqs), Job.state == state)
                            .returning(Job.queue).tuples().execute())
                if state in FINAL:  # the finished counters (metrics) keep them
                    from queuectl_tui.engine import retention
                    retention.count_removed(self.db, state, [q for (q,) in gone])
                if len(gone) != len(seqs):
                    moved = Job.select(Job.id, Job.state).where(
                        Job.seq.in_(seqs), Job.state != state).first()
                    which = f"job {moved.id} became {moved.state}" if moved else "a job changed"
                    raise Conflict(f"{which} meanwhile; nothing was deleted")
            attempts.remove([j.id for j in chunk])
            events.Event.insert_many([
                {"job_id": j.id, "from_state": j.state, "to_state": "deleted", "at": now,
                 "attempt": j.attempts, "note": note} for j in chunk]).execute()
            gone = [j.id for j in chunk]
            dependencies.forget(gone)
            uniqueness.forget(gone)
            for job_id in gone:  # whatever waited for them will never run
                dependencies.on_final(self.db, job_id, "deleted", now, self._move_dependent,
                                      self.backend.lock_rows)

    # ---------------------------------------------------------------- named queues

    def queue_list(self, recent: bool = True, counts: dict[str, int] | None = None,
                   by_queue: dict[str, dict[str, int]] | None = None) -> list[dict[str, Any]]:
        """Every queue with its counts, limit, pause flag and (`recent`) how many
        jobs it finished in the last minute. `counts` (this database's counts per
        state) stands for the queues' when only `default` exists: no second count.
        `by_queue` (queue -> state -> n, counted earlier) saves the count too."""
        if counts is not None and not self.has_named_queues():
            by_queue = {queues.DEFAULT: {st: n for st, n in counts.items() if n}}
        return queues.summary(self.db, self.clock.now(), 60.0 if recent else None,
                              counts=by_queue)

    def counts_by_queue(self) -> dict[str, dict[str, int]]:
        return queues.counts_by_queue()

    def has_named_queues(self) -> bool:
        """More than `default`, or a paused or limited queue: worth a line each."""
        rules = queues.read_rules(self.db)
        return len(rules.names) > 1 or bool(rules.paused or rules.limits)

    def queue_get(self, name: str) -> dict[str, Any]:
        queues.get(name)  # NotFound for a queue nothing has named
        return queues.summary(self.db, self.clock.now(), only=name)[0]

    def queue_set(self, name: str, **fields: Any) -> dict[str, Any]:
        """Pause, resume, limit or set retention; a queue named here for the first
        time exists from now on. Resuming or raising a limit wakes idle workers."""
        queues.check_name(name)
        with self.db.atomic():
            queues.update(name, self.clock.now(), **fields)
            self.backend.notify()
        return self.queue_get(name)

    def prune(self, *, queue: str | None = None, states: Iterable[str] = FINAL,
              older_than: float | None = None, dry_run: bool = False,
              max_batches: int | None = None) -> tuple[retention.Pruned, bool]:
        """Delete finished jobs past their keep time (or `older_than` seconds),
        with their events, attempts and logs, in short transactions."""
        from queuectl_tui.engine import retention
        if queue is not None:
            queues.check_name(queue)
        states = [check_state(st) for st in states]
        if any(st not in FINAL for st in states):
            raise UsageError(f"only finished jobs are pruned ({', '.join(FINAL)})")
        settings = config.get_all()
        defaults = {st: float(settings[f"retention-{st}"]) for st in FINAL}
        rules = retention.rules_now(defaults, self.clock.now(), queue=queue, states=states,
                                    older_than=older_than)
        return retention.prune(self.db, rules, self.opened.log_dir, dry_run=dry_run,
                               max_batches=max_batches, sleep=self.clock.sleep)

    def lapse_unique_keys(self) -> int:
        """Unique keys whose `unique_for` ran out: gone, so the table stays small."""
        with self.db.atomic():
            return uniqueness.lapse(self.clock.now())

    def take_prune_lease(self, owner: str) -> bool:
        from queuectl_tui.engine import retention
        return retention.take_lease(self.db, owner, self.clock.now(), self.backend.lock_rows)

    def sweep_logs(self) -> int:
        from queuectl_tui.engine import retention
        return retention.sweep_logs(self.db, self.opened.log_dir)

    # ---------------------------------------------------------------- config

    def config_get(self, key: str) -> Any:
        return config.get(key)

    def config_all(self) -> dict[str, Any]:
        return config.get_all()

    def config_set(self, key: str, value: Any) -> Any:
        with self.db.atomic():
            return config.set_value(key, value)


def not_retried(codes: str | None, exit_code: int | None, ended: str) -> str | None:
    """Why a failed run goes straight to the DLQ, if its job's retry rules say so."""
    if not codes:
        return None
    rules = codes.split(",")
    if ended == "timeout" and "timeout" in rules:
        return "timeout is in no_retry_on"
    if ended == "exit" and exit_code is not None and str(exit_code) in rules:
        return f"exit code {exit_code} is in no_retry_on"
    return None


def _unique(job_ids: Iterable[str]) -> list[str]:
    """Ids in the order given, each once (one id given as a bare string too)."""
    return list(dict.fromkeys([job_ids] if isinstance(job_ids, str) else job_ids))


class _Moved(Exception):
    """A job was not in the state we read: roll back and look again."""


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
