"""One worker process: claim the next due job, run it, record the outcome, repeat.

Idle, it does not hammer the claim: it watches a cheap change counter
(`PRAGMA data_version` on SQLite) every few milliseconds and claims only when
another process has committed something, a scheduled job has come due, or the
poll interval has passed. A stop (signal, `worker stop`, parent gone) is
honoured between jobs: the current job always finishes and is recorded.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import secrets
import signal
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from queuectl_tui.clock import Clock, iso
from queuectl_tui.engine import (
    BLOCKED_S, CLAIM_MARKER, DEFAULT_GRACE_S, Capacity, Claimed, Lease, Queue, Usage,
    config_values, current_host, open_database, open_log_for_append, parse_queue_names,
    pool_of, progress_pattern, register_worker, schema_moved, worker_beat, worker_stopped)
from queuectl_tui.errors import QueuectlError
from queuectl_tui.workers.pool_log import ERROR, FORMATS, PoolLog
from queuectl_tui.workers.progress import OutputProgress
from queuectl_tui.workers.runner import Abort, Control, run_command
from queuectl_tui.workers.signals import LocalProcesses
from queuectl_tui.workers.trouble import DB_BUSY, drop_connection, first_line

RESCUE_EVERY_S = 1.0  # how often an idle worker looks for jobs of dead workers
FIRST_TICK_S = 0.05  # a job still running this long gets its process group recorded


def new_worker_id() -> str:
    """Host plus random: unique across hosts and restarts (the pid is stored apart)."""
    return f"{current_host().split('.')[0]}-{secrets.token_hex(3)}"


class Worker:
    """The loop of one worker. In-process use (tests) passes a fake clock."""

    def __init__(self, queue: Queue, worker_id: str | None = None,
                 supervisor_pid: int | None = None, clock: Clock | None = None,
                 log: PoolLog | None = None) -> None:
        self.queue = queue
        self.log = log or PoolLog()
        self.clock = clock or queue.clock
        self.id = worker_id or new_worker_id()
        self.supervisor_pid = supervisor_pid
        self.parent_pid = os.getppid()
        self.stop_reason: str | None = None
        self.stop_grace: float | None = None  # set: stop now (see stop_now)
        self._next_beat = 0.0
        self._next_rescue = 0.0
        self._trouble: str | None = None  # the database problem being retried, if any
        self.lost_file: str | None = None  # set: the database file is gone; write nothing more
        self.newer_schema: str | None = None  # set: a newer queuectl migrated the database
        # When a claim last found nothing: a job due before then that is still
        # there is held back by a rule (a key's limit, capacity), not by time.
        self._missed_at = float("-inf")
        self._reload()

    def _reload(self) -> None:
        """Read the live settings (every beat: a `config set` reaches running
        workers within a second)."""
        settings = config_values()
        self.lease = float(settings["lease-seconds"])
        self.poll = float(settings["poll-interval"])
        # Beat at least every second: the beat also reads the stop flag.
        self.beat_every = min(self.lease / 3, 1.0)
        self.queue.apply_durability(settings["durability"])

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            if self.stop_grace is None:  # stop_now says its own line
                self.log.worker("stopping", self.id, f"stopping ({reason}) after the running "
                                "job, if any", reason=reason, now=False)

    def stop_now(self, reason: str, grace: float = DEFAULT_GRACE_S) -> None:
        """Stop without finishing the running job: it gets SIGTERM within a second,
        SIGKILL after `grace`, and goes back to the queue (attempt not counted)."""
        if self.stop_grace is None:
            self.stop_grace = grace
            self.log.worker("stopping", self.id, f"stopping now ({reason}): a running job gets "
                            f"SIGTERM, SIGKILL after {grace:g} s, and goes back to the queue",
                            reason=reason, now=True)
        self.request_stop(reason)

    def file_gone(self) -> bool:
        """Whether the database file was deleted or replaced under us (one stat).

        Checked before each claim, beat and outcome: a SQLite file removed while
        we hold it is still written through its old inode, and its leftover -wal
        beside a new file would carry our writes into the new database. The
        first time, say so in one line and stop without writing anything more."""
        if self.lost_file is None:
            reason = self.queue.opened.file_gone()
            if reason is None:
                return False
            self.lost_file = reason
            self._halt(reason, "nothing more is written to it")
        return True

    def schema_moved(self) -> bool:
        """Whether a newer queuectl migrated the database (one indexed read,
        before each idle claim and every second between jobs): stop claiming,
        hand back what we hold, and exit non-zero so the pool stops too."""
        if self.newer_schema is None:
            reason = schema_moved(self.queue.opened)
            if reason is None:
                return False
            self.newer_schema = reason
            self._halt(reason, "no more jobs are claimed")
        return True

    def _halt(self, reason: str, consequence: str) -> None:
        self.stop_reason = reason
        self.log.worker("stopping", self.id, f"stopping: {reason}; {consequence}", ERROR,
                        reason=reason)

    # ------------------------------------------------------------------ loop

    def run(self, *, until_idle: bool = False, max_jobs: int | None = None) -> int:
        """Work until stopped (or, with `until_idle`, until nothing is due); returns jobs run."""
        # A replacement worker may start while the database is locked or down:
        # it waits (saying so once) instead of dying with a traceback.
        capacity = self.queue.capacity
        self._persist("registering", lambda: register_worker(
            self.id, host=self.queue.host, pid=os.getpid(),
            supervisor_pid=self.supervisor_pid, now=self.clock.now(),
            queues=self.queue.serving, pool=self.queue.pool,
            capacity=capacity.to_json() if capacity else None,
            lock=self.queue.backend.lock_limited_claims), tries=None)
        self._persist("listening for new jobs", self.queue.backend.listen, tries=None)
        serving = getattr(self.queue, "serving", None)  # named queues, where the engine has them
        self.log.worker("started", self.id, f"started (pid {os.getpid()}"
                        + (f", queues {','.join(serving)})" if serving else ")"),
                        pid=os.getpid(), **({"queues": serving} if serving else {}))
        ran = 0
        claimed: Claimed | None = None
        try:
            while self.stop_reason is None and (max_jobs is None or ran < max_jobs):
                if claimed is None:
                    try:
                        self._housekeeping()
                        if self.stop_reason is not None:
                            break
                        with self._watching_for_blocks():
                            claimed = self.queue.claim(self.id, self.lease)
                        if claimed is not None:
                            self.log.claimed(self.id, claimed)
                        elif self.queue.claim_again:
                            continue  # near a flow limit: the next claim counts alone
                        else:
                            self._missed_at = self.clock.now()
                    except DB_BUSY as exc:
                        self._db_trouble(exc, "looking for work")
                        self.clock.sleep(1.0)
                        continue
                elif self.clock.monotonic() >= self._next_rescue:
                    self._busy_housekeeping()
                    if self.lost_file or self.newer_schema:
                        break
                if claimed is not None:
                    ran += 1
                    more = max_jobs is None or ran < max_jobs
                    # From here the job has run: if recording it fails for good,
                    # it must not be handed back below as "unstarted".
                    running, claimed = claimed, None
                    claimed = self._run(running, claim_next=more)
                    if os.getppid() != self.parent_pid:
                        self.request_stop("parent process exited")
                elif until_idle:
                    break
                else:
                    try:
                        self._idle()
                    except DB_BUSY as exc:
                        self._db_trouble(exc, "waiting for work")
                        self.clock.sleep(1.0)
        finally:
            if self.file_gone():
                pass  # the file is not ours any more: nothing to hand back or record
            elif claimed is not None:  # claimed with the last outcome, then told to stop
                self._persist("handing back a job", lambda: self.queue.release(claimed, self.id))
                self.log.released(self.id, claimed)
            if not self.file_gone():
                self._persist("recording the stop",
                              lambda: worker_stopped(self.id, now=self.clock.now()))
            self.log.worker("stopped", self.id, f"stopped after {ran} job(s)", jobs=ran)
        return ran

    def _busy_housekeeping(self) -> None:
        """Between jobs of a steady stream: the outcome commits already carry the
        heartbeat and the stop flag; still rescue others' jobs and reload config."""
        self._next_rescue = self.clock.monotonic() + RESCUE_EVERY_S
        if self.file_gone():
            return
        try:
            if self.schema_moved():
                return
            self._reload()
            self._take_back_orphans()
        except DB_BUSY as exc:
            self._db_trouble(exc, "looking for lost jobs")

    def _take_back_orphans(self) -> None:
        """Every second: jobs of dead workers, and bulk enqueues whose writer died."""
        for run in self.queue.rescue_runs():
            self.log.rescued(self.id, run)
        self.queue.recover_batches()

    def _db_trouble(self, exc: Exception, doing: str) -> None:
        """Say what is wrong once per episode (not once per retry), and drop a
        connection that may be broken so the next use opens a fresh one."""
        first = first_line(exc)
        if first != self._trouble:
            self._trouble = first
            self.log.worker("trouble", self.id, f"database trouble while {doing}: {first} "
                            "(retrying)", ERROR, doing=doing, error=first)
        drop_connection(self.queue.db)  # a broken connection is reopened on next use

    def _persist(self, doing: str, write: Callable[[], Any], *, tries: int | None = 8) -> Any:
        """Retry a write through a locked, full or briefly unreachable database.

        With `tries=None` (a job's outcome) it never gives up while the worker
        lives: a run that happened is recorded as a run once the database takes
        writes again. Meanwhile the job's lease is not renewed, but a rescuer on
        this host sees this worker alive and leaves the job alone.
        """
        delay = 0.1
        attempt = 0
        while True:
            attempt += 1
            try:
                result = write()
                if self._trouble is not None:
                    self.log.worker("recovered", self.id, "database writable again")
                    self._trouble = None
                return result
            except DB_BUSY as exc:
                limit = tries if tries is not None else (8 if self.stop_reason else None)
                if limit is not None and attempt >= limit:
                    raise  # told to stop: do not hang on a database that will not come back
                self._db_trouble(exc, doing)
                self.clock.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _housekeeping(self, state: str = "idle") -> None:
        if self.file_gone() or self.schema_moved():
            return
        now = self.clock.monotonic()
        if os.getppid() != self.parent_pid:
            self.request_stop("parent process exited")
        if now >= self._next_beat:
            self._next_beat = now + self.beat_every
            self._beat(state)
            self._reload()
        if now >= self._next_rescue:
            self._next_rescue = now + RESCUE_EVERY_S
            self._take_back_orphans()

    def _beat(self, state: str, claimed: Claimed | None = None,
              started: float | None = None) -> None:
        with self._watching_for_blocks():
            stop, grace = worker_beat(self.id, state=state, now=self.clock.now(),
                                      job_id=claimed.id if claimed else None,
                                      job_started_at=started)
        if grace is not None:
            self.stop_now("stop now requested", grace)
        elif stop:
            self.request_stop("stop requested")

    @contextmanager
    def _watching_for_blocks(self) -> Iterator[None]:
        """A write of ours that waited long (or failed) means other workers'
        lease renewals were blocked too: tell the rescuer not to trust leases
        for a while (issue: a long bulk enqueue got live jobs rescued)."""
        started = self.clock.monotonic()
        try:
            yield
        except DB_BUSY:
            self.queue.distrust_leases(self.lease)
            raise
        if self.clock.monotonic() - started > BLOCKED_S:
            self.queue.distrust_leases(self.lease)

    def _idle(self) -> None:
        """Wait until something may be claimable, cheaply.

        The backend says when another process committed (SQLite's change counter,
        PostgreSQL's NOTIFY); otherwise we wake for the next scheduled job, the
        next heartbeat or rescue scan, or the poll interval, whichever is first.
        """
        deadline = min(self.clock.monotonic() + self.poll, self._next_beat, self._next_rescue)
        next_due = self.queue.next_run_at()
        if next_due is not None and next_due > self._missed_at:  # else: wait for a change
            deadline = min(deadline, self.clock.monotonic() + max(0.0, next_due - self.clock.now()))
        while self.stop_reason is None:
            left = deadline - self.clock.monotonic()
            if left <= 0 or self.file_gone():  # even reads share a stale -shm: stop soon
                return
            # Short slices: a stop signal is noticed within a tenth of a second.
            if self.queue.backend.wait_for_change(min(left, 0.1), self.clock.sleep) \
                    and self.queue.has_due_job():
                return

    # ------------------------------------------------------------------ one job

    def _run(self, claimed: Claimed, claim_next: bool) -> Claimed | None:
        """Run a claimed job, record its outcome and (unless stopping) claim the
        next job in the same commit; returns that next job. The claim marked this
        worker busy and the outcome marks it idle in those same transactions, so
        while jobs keep coming each costs exactly one commit."""
        started = self.clock.now()
        log_dir = self.queue.opened.log_dir
        header = (f"--- attempt {claimed.runs} started {iso(started)} "
                  f"on worker {self.id} ---\n").encode()
        pid: list[int] = []
        recorded: list[int] = []
        paused: list[bool] = [False]  # what the last tick asked: its processes stopped

        def tick() -> Control:
            """Extend the lease (recording the process group the first time) and
            read what the job's owners want: cancelled, stopped now, lost,
            snoozed, paused or resumed, its timeout extended."""
            if self.file_gone():
                return Control(Abort("stopped", f"stopped: {self.lost_file}", DEFAULT_GRACE_S))
            try:
                with self.queue.db.atomic():
                    self._beat("busy", claimed, started)
                    lease = self.queue.extend_lease(
                        claimed, self.lease, None if recorded else pid[0])
                recorded.extend(pid[:1])
            except DB_BUSY:
                lease = Lease(held=True)  # a locked moment is not a lost claim
            return self._steer(claimed, lease, paused)

        env = self._job_env(claimed)
        watch = self._progress_watch(claimed)
        result = run_command(
            claimed.command, timeout=claimed.timeout,
            open_log=lambda: open_log_for_append(log_dir, claimed.seq), log_header=header,
            on_start=pid.append, tick=tick, first_tick=FIRST_TICK_S, tick_every=self.beat_every,
            env=env, cwd=claimed.cwd, mem_limit=claimed.mem, watch=watch)
        if watch is not None and not self.file_gone():
            watch.finish()  # the last value its output gave, before its outcome
        usage = Usage(result.peak_mem, result.cpu_s, result.mem_limit_by, claimed.devices)
        took = self.clock.now() - started
        if self.file_gone():
            return None  # its outcome has nowhere to go
        lease = self.lease if claim_next and self.stop_reason is None else None
        outcome = self._persist(f"recording job {claimed.id}", lambda: self.queue.finish_and_claim(
            claimed, self.id, exit_code=result.exit_code, error=result.error,
            stdout_tail=result.stdout_tail, stderr_tail=result.stderr_tail, next_lease=lease,
            ended=result.ended, started_at=started, log_offset=result.log_offset, usage=usage,
            paused_s=result.paused_s), tries=None)
        self._next_beat = self.clock.monotonic() + self.beat_every
        # One write for the outcome and the next claim, made in one commit: a busy
        # pool wakes its log's reader (the journal) once per job, not twice.
        with self.log.together():
            self.log.finished(self.id, claimed, outcome.state, took, result.exit_code,
                              outcome.snoozed or result.error, None if outcome.retry_at is None
                              else outcome.retry_at - self.clock.now())
            if outcome.next is not None:
                self.log.claimed(self.id, outcome.next)
        if outcome.stop:
            self.request_stop("stop requested")
        return outcome.next

    def _steer(self, claimed: Claimed, lease: Lease, paused: list[bool]) -> Control:
        """What the run should do after this lease renewal (`paused[0]`: whether
        the last one stopped its processes; kept up to date here)."""
        if not lease.held:
            return Control(Abort("lost", "claim lost (job was rescued elsewhere); run "
                                 "abandoned"))
        if lease.cancel_grace is not None:
            return Control(Abort("cancelled", "cancelled while running (SIGTERM, then "
                                 f"SIGKILL after {lease.cancel_grace:g} s)", lease.cancel_grace))
        if self.stop_grace is not None:
            return Control(Abort("stopped", "stopped with its worker (stop now); back in the "
                                 "queue, attempt not counted", self.stop_grace))
        if lease.snooze:  # it asked, and is still running: stop it as a cancel would
            return Control(Abort("snoozed", "snoozed: stopped by its worker",
                                 DEFAULT_GRACE_S))
        stop = lease.paused
        if stop and self.stop_reason is not None:
            try:  # stopping after the running job: a paused one would never end
                stop = not self.queue.resume_for_stop(claimed)
            except DB_BUSY:
                pass  # the next tick asks again
        if stop is not None and stop != paused[0]:
            paused[0] = stop
            self.log.paused(self.id, claimed, stop, "" if stop or self.stop_reason is None
                            else "its worker is stopping")
        return Control(stopped=stop, timeout=lease.timeout)

    def _job_env(self, claimed: Claimed) -> dict[str, str]:
        """The job's own variables and what reaches its own database from inside
        it (`queuectl progress`, `queuectl result`): its id, its claim token and
        the database (a file's absolute path: the job may run elsewhere; a URL
        stays out of every command line)."""
        opened = self.queue.opened
        env = {**(json.loads(claimed.env) if claimed.env else {}),
               "QUEUECTL_JOB_ID": claimed.id, "QUEUECTL_ATTEMPT": str(claimed.attempts),
               CLAIM_MARKER: claimed.claim_token, "QUEUECTL_DB": opened.path or opened.target}
        if claimed.gpus:  # its own devices only (engine/flow.py chose them at the claim)
            env["CUDA_VISIBLE_DEVICES"] = claimed.devices or ""
        if claimed.has_after:  # the jobs it waited for: `queuectl result --deps` reads theirs
            env["QUEUECTL_AFTER"] = " ".join(self._persist(
                f"reading job {claimed.id}'s dependencies",
                lambda: self.queue.dependency_ids(claimed.id), tries=None))
        return env

    def _progress_watch(self, claimed: Claimed) -> OutputProgress | None:
        """Progress read from the job's output lines, when it or its queue names a pattern."""
        pattern = progress_pattern(claimed.progress_regex)
        if pattern is None:
            return None

        def write(value: Any) -> bool:
            try:
                return self.queue.record_progress(claimed, value)
            except DB_BUSY:
                return False  # advisory: the next value, or the last, tries again

        return OutputProgress(pattern, write)


# ---------------------------------------------------------------------- process entry

def _die_with_parent() -> None:
    """Linux: get SIGTERM when the supervisor dies, so no worker lingers."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # the ppid check in the loop still catches it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="queuectl-worker")
    # The database comes in QUEUECTL_DB (see supervisor.target_env), not argv.
    parser.add_argument("--db", default=os.environ.get("QUEUECTL_DB"))
    parser.add_argument("--id")
    parser.add_argument("--supervisor-pid", type=int)
    parser.add_argument("--log-format", choices=FORMATS, default="text")
    parser.add_argument("--quiet", action="store_true", help="no job lines")
    parser.add_argument("--queues", help="queues to serve, earlier first (default: all)")
    parser.add_argument("--capacity", help="the pool's capacity, as JSON (engine/resources.py)")
    args = parser.parse_args(argv)
    log = PoolLog(args.log_format, jobs=not args.quiet)
    _die_with_parent()
    worker: Worker | None = None
    early: list[int] = []  # signals that arrive while we are still starting up

    def on_signal(signum: int, _frame: Any) -> None:
        if worker is None:
            early.append(signum)
        elif signum == signal.SIGUSR1:  # the supervisor's "stop now"
            worker.stop_now("SIGUSR1")
        else:
            worker.request_stop(signal.Signals(signum).name)

    # SIGHUP: the pool's terminal closed; the whole foreground group gets it.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(signum, on_signal)
    try:
        opened = open_database(args.db)
    except QueuectlError as exc:  # one line for the pool's log; the supervisor retries
        log.worker("trouble", args.id or "?", f"cannot open the database: {exc}", ERROR,
                   error=str(exc))
        return 1
    queue = Queue(opened, worker=True, processes=LocalProcesses())
    if args.supervisor_pid:  # it checkpoints; workers never wait for one mid-commit
        queue.backend.leave_checkpoints()
    queue.serving = parse_queue_names(args.queues) if args.queues else None
    worker = Worker(queue, args.id, args.supervisor_pid, log=log)
    queue.claim_for(pool_of(queue.host, args.supervisor_pid, worker.id),
                    Capacity.from_json(args.capacity))
    for signum in early:  # a pool stopped while this worker started
        on_signal(signum, None)
    if args.supervisor_pid and os.getppid() != args.supervisor_pid:
        return 1  # the supervisor died while we were starting
    worker.run()
    opened.close()
    return 1 if worker.lost_file or worker.newer_schema else 0


if __name__ == "__main__":
    sys.exit(main())
