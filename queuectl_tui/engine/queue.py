"""`Queue`: the engine's one entry point, a thin facade over its concepts.

The faces (CLI, console) and the workers call these methods and nothing else
touches job rows. Each method hands the work to the module named for its
concept, with the `Context` the Queue builds once (engine/context.py):

- transitions.py: the one way a job changes state, and what that sets off;
- enqueue.py (and batches.py for big files): adding jobs;
- claim.py and outcomes.py: a worker takes a job, keeps it, records its end;
- retry_policy.py: backoff, no-retry-on and what a rescue does (pure);
- rescue.py: runs of gone workers, blocked jobs nothing will release;
- operator.py: retry, cancel, requeue, delete, purge, stop workers, and
  hold.py and edit.py: hold, release, edit (the facade's part: actions.py,
  which records each in the audit trail);
- reads.py: jobs, counts, workers, history, logs;
- queues.py, retention.py, config.py: named queues, pruning, settings.

The write-side concepts (enqueue, batches, claim, outcomes, rescue, operator
actions) are imported by the methods that use them: a command that only reads
(`status`, `list`) never loads them, which keeps its start-up where it was
before the split (about 6 ms of imports otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator

from queuectl_tui.clock import Clock, Ids, SyncedClock
from queuectl_tui.engine import (attempts, config, dependencies, events, logs, queues, reads,
                                 registry)
from queuectl_tui.engine.actions import OperatorActions
from queuectl_tui.engine.context import Context, current_host
from queuectl_tui.engine.states import FINAL

if TYPE_CHECKING:
    from queuectl_tui.engine.attempts import Usage
    from queuectl_tui.engine.resources import Capacity
    from queuectl_tui.engine.claim import Lease
    from queuectl_tui.engine.failure_groups import FailureGroup
    from queuectl_tui.engine.outcomes import Outcome
    from queuectl_tui.engine.rescue import Rescued
    from queuectl_tui.engine.procs import ProcessControl


if TYPE_CHECKING:
    import peewee as pw

    from queuectl_tui.engine import retention
    from queuectl_tui.engine.storage.columns import Claimed
    from queuectl_tui.engine.storage.opened import Opened
    from queuectl_tui.engine.jobspec import JobSpec
    from queuectl_tui.engine.storage.models import Job


class Queue(OperatorActions):
    """The engine's one entry point, bound to an open database, a clock and an id source."""

    def __init__(self, opened: Opened, clock: Clock | None = None, ids: Ids | None = None,
                 host: str | None = None, worker: bool = False,
                 processes: ProcessControl | None = None) -> None:
        if clock is None and opened.backend.shared_by_hosts:
            clock = SyncedClock(opened.backend.db_time)  # lease times on the server's clock
        self.ctx = Context(opened, opened.db, opened.backend, clock or Clock(), ids or Ids(),
                           host or current_host(), processes)
        self._durability = "full"  # how every connection opens (storage/opening.py)
        if worker:
            self.apply_durability(config.get("durability"))

    @property
    def opened(self) -> Opened:
        return self.ctx.opened

    @property
    def db(self) -> pw.Database:
        return self.ctx.db

    @property
    def backend(self) -> Any:
        return self.ctx.backend

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def ids(self) -> Ids:
        return self.ctx.ids

    @property
    def host(self) -> str:
        return self.ctx.host

    @property
    def serving(self) -> list[str] | None:
        """The queues this process claims from, earlier first (None: every queue)."""
        return self.ctx.serving

    @serving.setter
    def serving(self, names: list[str] | None) -> None:
        self.ctx.serving = names

    def claim_for(self, pool: str, capacity: Capacity | None) -> None:
        """Claim as a member of `pool`, whose jobs must fit in `capacity` (engine/flow.py)."""
        self.ctx.pool, self.ctx.capacity = pool, capacity

    @property
    def claim_again(self) -> bool:
        """The last claim found nothing only because a queue near a flow limit
        must be counted alone (PostgreSQL): claim again at once, not idle."""
        return self.ctx.claim_again

    @property
    def pool(self) -> str | None:
        return self.ctx.pool

    @property
    def capacity(self) -> Capacity | None:
        return self.ctx.capacity

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

    # ---------------------------------------------------------------- enqueue

    def enqueue(self, spec: JobSpec, default_cwd: str | None = None) -> dict[str, Any]:
        """Add one job; returns its public shape as enqueued (as `show --json` prints it)."""
        written: list[dict[str, Any]] = []
        self.enqueue_many([spec], default_cwd, written=written)
        return written[0]

    def enqueue_many(self, specs: list[JobSpec], default_cwd: str | None = None,
                     written: list[dict[str, Any]] | None = None) -> list[str]:
        from queuectl_tui.engine import audit, batches, enqueue
        if len(specs) > batches.SLICE_ROWS:  # staged in many transactions: noted after
            ids = enqueue.enqueue_many(self.ctx, specs, default_cwd, written)
            with self.db.atomic():
                audit.record(self.ctx, "enqueue", jobs=ids)
            return ids
        with self.db.atomic():
            ids = enqueue.enqueue_many(self.ctx, specs, default_cwd, written)
            audit.record(self.ctx, "enqueue", jobs=ids)
            return ids

    def refuse_taken_ids(self, ids: list[str]) -> None:
        """Conflict if any of these ids is taken (inside the caller's transaction);
        rows a dead bulk enqueue left holding one are cleared first."""
        from queuectl_tui.engine import batches
        batches.free_ids(self.ctx, ids)

    def insert_job_rows(self, columns: tuple[str, ...], rows: list[tuple]) -> None:
        from queuectl_tui.engine import enqueue
        enqueue.insert_job_rows(self.ctx, columns, rows)

    def recover_batches(self) -> None:
        """Finish or remove what dead bulk enqueues left (workers call this)."""
        from queuectl_tui.engine import batches
        batches.recover(self.ctx)

    # ---------------------------------------------------------------- workers' side

    def claim(self, worker_id: str, lease_seconds: float) -> Claimed | None:
        from queuectl_tui.engine import claim
        return claim.claim(self.ctx, worker_id, lease_seconds)

    def has_due_job(self) -> bool:
        from queuectl_tui.engine import claim
        return claim.has_due_job(self.ctx)

    def next_run_at(self) -> float | None:
        from queuectl_tui.engine import claim
        return claim.next_run_at(self.ctx)

    def extend_lease(self, claimed: Claimed, lease_seconds: float,
                     pid: int | None = None) -> Lease:
        from queuectl_tui.engine import claim
        return claim.extend_lease(self.ctx, claimed, lease_seconds, pid)

    def finish(self, claimed: Claimed, worker_id: str, *, exit_code: int | None,
               error: str | None, stdout_tail: str = "", stderr_tail: str = "",
               ended: str = "exit") -> str | None:
        """Record a run's outcome; returns the new state, or None if the claim was lost."""
        from queuectl_tui.engine import outcomes
        return outcomes.finish_and_claim(self.ctx, claimed, worker_id, exit_code=exit_code,
                                         error=error, stdout_tail=stdout_tail,
                                         stderr_tail=stderr_tail, ended=ended).state

    def finish_and_claim(self, claimed: Claimed, worker_id: str, *, exit_code: int | None,
                         error: str | None, stdout_tail: str = "", stderr_tail: str = "",
                         next_lease: float | None = None, ended: str = "exit",
                         started_at: float | None = None,
                         log_offset: int | None = None, usage: Usage | None = None,
                         paused_s: float = 0.0) -> Outcome:
        from queuectl_tui.engine import outcomes
        return outcomes.finish_and_claim(
            self.ctx, claimed, worker_id, exit_code=exit_code, error=error,
            stdout_tail=stdout_tail, stderr_tail=stderr_tail, next_lease=next_lease,
            ended=ended, started_at=started_at, log_offset=log_offset, usage=usage,
            paused_s=paused_s)

    def release(self, claimed: Claimed, worker_id: str) -> bool:
        from queuectl_tui.engine import outcomes
        return outcomes.release(self.ctx, claimed, worker_id)

    def resume_for_stop(self, claimed: Claimed) -> bool:
        """Its worker is stopping: a paused job is continued so it can end."""
        from queuectl_tui.engine import running
        return running.resume_for_stop(self.ctx, claimed)

    # ---------------------------------------------------------------- a running job's own requests

    def snooze(self, job_id: str, token: str | None, seconds: float) -> dict[str, Any]:
        """The running job stops and comes back after `seconds`, its attempt
        not counted (engine/snooze.py); `token`: the run asking, from inside it."""
        from queuectl_tui.engine import snooze
        return snooze.request(self.ctx, job_id, token, seconds)

    def extend(self, job_id: str, token: str | None, seconds: float) -> dict[str, Any]:
        """The running job's timeout pushed `seconds` further (engine/running.py)."""
        from queuectl_tui.engine import running
        return running.extend(self.ctx, job_id, token, seconds)

    def report_progress(self, job_id: str, token: str | None, progress: Any,
                        message: str | None = None, set_message: bool = False) -> bool:
        """`queuectl progress`; False: the database stayed locked (engine/reports.py)."""
        from queuectl_tui.engine import reports
        return reports.report(self.ctx, job_id, token, progress, message, set_message)

    def record_progress(self, claimed: Claimed, progress: Any) -> bool:
        """What a run's output lines said, written by its worker."""
        from queuectl_tui.engine import reports
        return reports.record(self.ctx, claimed.seq, claimed.claim_token, progress)

    def set_result(self, job_id: str, token: str | None, text: str) -> int:
        from queuectl_tui.engine import results
        return results.store(self.ctx, job_id, token, text)

    def result_of(self, job_id: str) -> str:
        from queuectl_tui.engine import results
        return results.read(self.ctx, job_id)

    def dependency_results(self, job_id: str) -> Iterator[tuple[str, str | None]]:
        from queuectl_tui.engine import results
        return results.of_dependencies(self.ctx, job_id)

    def dependency_ids(self, job_id: str) -> list[str]:
        from queuectl_tui.engine import results
        return results.dependency_ids(self.ctx, job_id)

    # ---------------------------------------------------------------- rescue

    def rescue(self, worker_id: str | None = None, *, counted: bool = True) -> list[str]:
        """The ids of the jobs `rescue_runs` took back."""
        from queuectl_tui.engine import rescue
        return [run.id for run in rescue.rescue_runs(self.ctx, worker_id, counted=counted)]

    def rescue_runs(self, worker_id: str | None = None, *,
                    counted: bool = True) -> list[Rescued]:
        from queuectl_tui.engine import rescue
        return rescue.rescue_runs(self.ctx, worker_id, counted=counted)

    def distrust_leases(self, lease: float) -> None:
        from queuectl_tui.engine import rescue
        rescue.distrust_leases(self.ctx, lease)

    def release_stuck(self, after_seq: int = 0, limit: int = dependencies.SWEEP_BATCH
                      ) -> tuple[list[tuple[str, str]], int]:
        from queuectl_tui.engine import rescue
        return rescue.release_stuck(self.ctx, after_seq, limit)

    # ---------------------------------------------------------------- reading

    def job_dict(self, job_id: str) -> dict[str, Any]:
        return reads.detail(job_id)

    def unique_holder(self, key: str, job_id: str) -> dict[str, Any]:
        return reads.unique_holder(key, job_id)

    def waiting_for(self, job_id: str) -> list[dict[str, Any]]:
        """The jobs this one was enqueued --after, each with its state now."""
        return dependencies.waiting_for(job_id)

    def needed_by(self, job_id: str) -> list[dict[str, Any]]:
        """The jobs enqueued --after this one, each with its state now."""
        return dependencies.needed_by(job_id)

    def get(self, job_id: str) -> Job:
        return reads.get(job_id)

    def jobs(self, state: str | Iterable[str] | None = None, limit: int | None = None,
             after_seq: int | None = None, queue: str | None = None,
             key: str | None = None, group: str | None = None) -> Iterator[Any]:
        return reads.jobs(state, limit, after_seq, queue, key, group)

    def dlq_groups(self, queue: str | None = None) -> list[FailureGroup]:
        """The DLQ's dead jobs grouped by how they failed, most members first."""
        from queuectl_tui.engine import failure_groups
        return failure_groups.read(queue)

    def dlq_group(self, group: str, queue: str | None = None) -> FailureGroup:
        """One group by its id or the start of it (unknown: NotFound, exit 3)."""
        from queuectl_tui.engine import failure_groups
        return failure_groups.one(group, queue)

    def finished(self, job_ids: list[str]) -> dict[str, Job]:
        return reads.finished(job_ids)

    def counts(self, queue: str | None = None) -> dict[str, int]:
        return reads.state_counts(self.ctx, queue)

    def workers(self, include_stopped: bool = False) -> list[dict[str, Any]]:
        return reads.workers(self.ctx, include_stopped)

    def stranded(self, job_ids: list[str] | None = None) -> list[dict[str, Any]]:
        return reads.stranded(self.ctx, job_ids)

    def pools(self) -> list[dict[str, Any]]:
        return reads.pools(self.ctx)

    def why_waiting(self, job: Job) -> str | None:
        return reads.why_waiting(self.ctx, job)

    def hidden_gone_workers(self) -> int:
        """Workers gone longer ago than `workers()` shows (pruned after a day)."""
        return registry.count_hidden_gone(now=self.clock.now())

    def any_worker_alive(self) -> bool:
        return reads.any_worker_alive(self.ctx)

    def live_workers(self) -> list[dict[str, Any]]:
        return [w for w in self.workers() if w["state"] in registry.LIVE_STATES]

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

    def paused_count(self, queue: str | None = None) -> int:
        return reads.paused_count(queue)

    # ---------------------------------------------------------------- named queues

    def queue_list(self, recent: bool = True, counts: dict[str, int] | None = None,
                   by_queue: dict[str, dict[str, int]] | None = None) -> list[dict[str, Any]]:
        return queues.listing(self.ctx, recent, counts, by_queue)

    def counts_by_queue(self) -> dict[str, dict[str, int]]:
        return queues.counts_by_queue()

    def has_named_queues(self) -> bool:
        return queues.has_named(self.db)

    def queue_get(self, name: str) -> dict[str, Any]:
        return queues.one(self.ctx, name)

    def queue_set(self, name: str, **fields: Any) -> dict[str, Any]:
        from queuectl_tui.engine import audit
        with self.db.atomic():
            row = queues.set_rules(self.ctx, name, **fields)
            paused = fields.get("paused") if set(fields) == {"paused"} else None
            action = "queue set" if paused is None else ("queue pause" if paused
                                                         else "queue resume")
            audit.record(self.ctx, action, target=name,
                         detail=None if paused is not None else fields)
            return row

    def queue_max_timeout(self, name: str, seconds: float | None) -> dict[str, Any]:
        """The longest timeout `extend` may take the queue's jobs to (None: no bound)."""
        from queuectl_tui.engine import running
        return running.set_max_timeout(self.ctx, name, seconds)

    # ---------------------------------------------------------------- retention
    # retention is imported where used: `status` and `list` never prune.

    def prune(self, *, queue: str | None = None, states: Iterable[str] = FINAL,
              older_than: float | None = None, dry_run: bool = False,
              max_batches: int | None = None) -> tuple[retention.Pruned, bool]:
        from queuectl_tui.engine import audit, retention
        pruned, whole = retention.prune_now(self.ctx, queue=queue, states=states,
                                            older_than=older_than, dry_run=dry_run,
                                            max_batches=max_batches)
        if not dry_run and self.ctx.actor is not None:
            with self.db.atomic():
                audit.record(self.ctx, "prune", target=queue,
                             detail={"removed": pruned.counts, "older_than": older_than})
        return pruned, whole

    def lapse_unique_keys(self) -> int:
        """Unique keys whose `unique_for` ran out: gone, so the table stays small."""
        from queuectl_tui.engine import uniqueness
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
        from queuectl_tui.engine import audit
        with self.db.atomic():
            stored = config.set_value(key, value)
            audit.record(self.ctx, "config set", target=key, detail=stored)
            return stored
