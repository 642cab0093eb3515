"""The few statements that differ between SQLite and PostgreSQL.

Everything else in the engine is plain Peewee. Here live: the claim (one
`UPDATE … RETURNING` picking the next due job), the indexes Peewee cannot
declare (partial ones), and the cheap "has anything changed?" probe idle
workers use instead of hammering the claim.
"""

from __future__ import annotations

import os
import select
import sqlite3
import time
from typing import Any, Callable

import peewee as pw

from queuectl_tui.engine.columns import CLAIM_RETURNING, Claimed

CHANNEL = "queuectl_jobs"
HOOKS_CHANNEL = "queuectl_hooks"  # a finish hook queued (engine/hooks.py): wakes hook runners
PROBE_INTERVAL_S = 0.005  # SQLite without inotify: how often an idle worker polls
# After a WAL write, the writer publishes the commit a moment later (after its
# fsync, which writes nothing we can watch): look at the change counter at these
# times (seconds after the latest write) before deciding nothing was committed.
SETTLE_PROBES_S = (0.0, 0.001, 0.003, 0.007, 0.015, 0.031)
# A new write starts the probes over, but they stay this far apart: a checkpoint
# copying thousands of pages writes the database file thousands of times.
PROBE_GAP_S = 0.001

_CLAIM_SET = """
    prev_state = state, state = 'processing', attempts = attempts + 1, runs = runs + 1,
    worker_id = {p}, claim_token = {p}, started_at = {p}, updated_at = {p},
    lease_expires_at = {p}, finished_at = NULL, exit_code = NULL,
    run_pid = NULL, run_host = {p}
"""
_CLAIM_PICK = """
    SELECT seq FROM job {hint}
    WHERE queue = {p} AND state IN ('pending', 'failed') AND run_at <= {p}
    ORDER BY priority DESC, run_at, seq
    LIMIT 1
"""
# A worker asked to stop takes nothing more (its outcome's commit used to read
# the flag with a statement of its own before claiming).
_CLAIM_UNLESS_STOPPING = """
    AND NOT EXISTS (SELECT 1 FROM worker WHERE id = {p} AND stop_requested)
"""
EXTRA_INDEXES = (
    # The claim order over every queue, only over claimable rows: the console's
    # "run" order lists waiting jobs by it without sorting them.
    "CREATE INDEX IF NOT EXISTS job_claim ON job (priority DESC, run_at, seq)"
    " WHERE state IN ('pending', 'failed')",
    # Claim order per queue, only over claimable rows: stays small however much
    # history piles up, and a paused queue's backlog is never walked.
    "CREATE INDEX IF NOT EXISTS job_claim_q ON job (queue, priority DESC, run_at, seq)"
    " WHERE state IN ('pending', 'failed')",
    # When is the next job of a queue due? (an idle worker's wake-up time)
    "CREATE INDEX IF NOT EXISTS job_due_q ON job (queue, run_at)"
    " WHERE state IN ('pending', 'failed')",
    # A bulk enqueue's rows before they are published (engine/batches.py).
    "CREATE INDEX IF NOT EXISTS job_staged ON job (batch, seq) WHERE state = 'staged'",
    # Rescue scans only running jobs.
    "CREATE INDEX IF NOT EXISTS job_lease ON job (lease_expires_at)"
    " WHERE state = 'processing'",
    # Per-queue counts (`queue list`, `status`) and a queue's jobs by state, in order.
    "CREATE INDEX IF NOT EXISTS job_queue_state ON job (queue, state, seq)",
    # The jobs a schedule made (the console's Schedules view opens them).
    "CREATE INDEX IF NOT EXISTS job_schedule ON job (schedule, seq) WHERE schedule IS NOT NULL",
    # Retention: the oldest finished jobs first (engine/retention.py).
    "CREATE INDEX IF NOT EXISTS job_finished ON job (state, finished_at)"
    " WHERE state IN ('completed', 'dead', 'cancelled')",
)
# Indexes of earlier schemas that v4 replaced with per-queue ones.
OLD_INDEXES = ("job_due",)


class Backend:
    """Backend-specific SQL. Subclasses differ only in statements, not in meaning."""

    name = "?"
    claim_sql: str
    shared_by_hosts = False  # True: lease times come from the server's clock (db_time)
    # Appended to a SELECT that must hold the row until commit. SQLite needs
    # nothing: a write transaction (BEGIN IMMEDIATE) already excludes writers.
    lock_rows = ""
    # Appended to a SELECT of rows that must not change until commit while this
    # transaction decides on them (a dependency's state: engine/dependencies.py).
    share_rows = ""
    # The next blocked jobs after a seq, by the (state, seq) index (the stuck-job
    # sweep, engine/dependencies.py). SQLite plans this plain form on the index.
    blocked_page_sql = ("SELECT seq, id FROM job WHERE state = 'blocked' AND seq > {p} "
                        "ORDER BY seq LIMIT {p}")

    def __init__(self, db: pw.Database) -> None:
        self.db = db

    def claim(self, now: float, worker_id: str, token: str, lease_until: float,
              host: str, queues: list[str]) -> Claimed | None:
        """Take the next due job of the first of `queues` that has one; the caller
        holds a write transaction and has left out paused and full queues."""
        params = (worker_id, token, now, now, lease_until, host)
        for queue in queues:
            row = self.db.execute_sql(self.claim_sql, (*params, queue, now, worker_id)).fetchone()
            if row:
                return Claimed(*row)
        return None

    claim_hint = ""
    due_hint = ""

    def by_head(self, queues: list[str], now: float) -> list[str]:
        """The queues among `queues` with a due job, best next job first (priority,
        due time, age): one index seek per queue, so a worker serving every queue
        takes jobs in one global order."""
        if len(queues) < 2:
            return queues
        p = self.db.param
        heads = " UNION ALL ".join(
            f"SELECT * FROM (SELECT queue, priority, run_at, seq FROM job {self.claim_hint} "
            f"WHERE queue = {p} AND state IN ('pending', 'failed') AND run_at <= {p} "
            f"ORDER BY priority DESC, run_at, seq LIMIT 1) AS h{i}" for i in range(len(queues)))
        params = [value for queue in queues for value in (queue, now)]
        rows = self.db.execute_sql(
            f"SELECT queue FROM ({heads}) AS heads ORDER BY priority DESC, run_at, seq",
            params).fetchall()
        return [row[0] for row in rows]

    def next_run_at(self, queues: list[str]) -> float | None:
        """When the earliest claimable job of these queues is due (None: nothing waits)."""
        p = self.db.param
        times = [self.db.execute_sql(
            f"SELECT MIN(run_at) FROM job {self.due_hint} "
            f"WHERE queue = {p} AND state IN ('pending', 'failed')", (queue,)).fetchone()[0]
            for queue in queues]
        return min((t for t in times if t is not None), default=None)

    def has_due_job(self, now: float, queues: list[str]) -> bool:
        p = self.db.param
        for queue in queues:
            row = self.db.execute_sql(
                f"SELECT 1 FROM job {self.due_hint} WHERE queue = {p} "
                f"AND state IN ('pending', 'failed') AND run_at <= {p} LIMIT 1",
                (queue, now)).fetchone()
            if row is not None:
                return True
        return False

    def lock_limited_claims(self) -> None:
        """Before counting a limited queue's running jobs: make claims that may
        take from limited queues happen one at a time (PostgreSQL)."""

    def insert_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """Many rows in the caller's transaction, without an ORM in the loop."""
        p = self.db.param
        with pw.__exception_wrapper__:  # driver errors as Peewee's (IntegrityError, ...)
            self.db.cursor().executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join([p] * len(columns))})", rows)

    def publish_staged(self, batch: str, columns: tuple[str, ...], limit: int,
                       now: float) -> int:
        """Move up to `limit` of a batch's rows from staged_job into job, in the
        file's order, each with its `pending` event, inside the caller's
        transaction; returns how many. Writers take turns on SQLite, so the seq
        ranges read first are still the batch's (and only ours) when the
        statements that use them run."""
        p, cols = self.db.param, ", ".join(columns)
        first, last = self.db.execute_sql(
            f"SELECT MIN(seq), MAX(seq) FROM (SELECT seq FROM staged_job WHERE batch = {p} "
            f"ORDER BY seq LIMIT {int(limit)}) AS s", (batch,)).fetchone()
        if first is None:
            return 0
        before = self.db.execute_sql("SELECT COALESCE(MAX(seq), 0) FROM job").fetchone()[0]
        where = f"FROM staged_job WHERE batch = {p} AND seq BETWEEN {p} AND {p}"
        moved = self.db.execute_sql(f"INSERT INTO job ({cols}) SELECT {cols} {where} "
                                    f"ORDER BY seq", (batch, first, last)).rowcount
        self.db.execute_sql(f"DELETE {where}", (batch, first, last))
        self.db.execute_sql(f"INSERT INTO event (job_id, to_state, at, attempt) "
                            f"SELECT id, 'pending', {p}, 0 FROM job WHERE seq > {p}",
                            (now, before))
        return moved

    def create_extra_indexes(self) -> None:
        for statement in EXTRA_INDEXES:
            self.db.execute_sql(statement)

    def drop_old_indexes(self) -> None:
        for name in OLD_INDEXES:
            self.db.execute_sql(f"DROP INDEX IF EXISTS {name}")

    def notify(self, channel: str = CHANNEL) -> None:
        """Inside a write transaction that made a job claimable: wake idle workers
        (or, on HOOKS_CHANNEL, that queued a finish hook: wake hook runners)."""

    def listen(self, channel: str = CHANNEL) -> None:
        """Start receiving wake-ups (idle workers call this once; hook runners
        with HOOKS_CHANNEL)."""

    def wait_for_change(self, timeout: float, sleep: Callable[[float], None]) -> bool:
        """Block up to `timeout` s; True as soon as another process may have added work."""
        sleep(timeout)
        return False

    def db_time(self) -> float | None:
        """The database server's clock, for backends shared by many hosts."""
        return None

    def schema_lock(self) -> None:
        """Inside the schema transaction: keep concurrent first starts from racing."""

    def lost_writes(self) -> str | None:
        """Why commits of this connection may not have reached the database, if
        they may not have (checked before telling a person "saved")."""
        return None

    def leave_checkpoints(self) -> None:
        """This connection is a pool worker's: leave WAL checkpoints to its
        supervisor (SQLite)."""

    def checkpoint(self) -> None:
        """Fold the write-ahead log back into the database (SQLite), off the
        workers' path."""

    def try_write(self, write: Callable[[], Any]) -> bool:
        """Run `write` in a transaction of its own if that costs no waiting; for
        bookkeeping a reader may leave undone (a stored count). False if not done."""
        try:
            with self.db.atomic():
                write()
            return True
        except (pw.DatabaseError, pw.InterfaceError):
            return False


WORKER_AUTOCHECKPOINT_PAGES = 25_000  # 100 MB of WAL: a bound, not the usual path


class SqliteBackend(Backend):
    name = "sqlite"
    # The claim runs inside BEGIN IMMEDIATE (the database's lock_type), so the
    # sub-select and the update see the same snapshot and no other writer can
    # interleave: SQLite has one writer at a time.
    # INDEXED BY: the planner would otherwise pick (state, seq) and sort every
    # claimable row on each claim; the partial index hands over the next job at once.
    claim_sql = (
        "UPDATE job SET" + _CLAIM_SET.format(p="?")
        + "WHERE seq = (" + _CLAIM_PICK.format(p="?", hint="INDEXED BY job_claim_q") + ")"
        + _CLAIM_UNLESS_STOPPING.format(p="?") + CLAIM_RETURNING
    )

    _seen: Any = None
    _watch: Any = None
    # The settle probes under way: when the latest WAL write was seen (monotonic
    # seconds) and the next probe's index; kept across calls, so a write seen at
    # the end of one wait is still followed up in the next.
    _wrote_at: float | None = None
    _probe = 0
    _probed_at = -1.0
    # As for the claim: without the hints SQLite walks (state, seq) over every waiting row.
    claim_hint = "INDEXED BY job_claim_q"
    due_hint = "INDEXED BY job_due_q"

    def lost_writes(self) -> str | None:
        """SQLite keeps writing to a -wal file that was deleted under it (by
        hand, by a cleaning script): every commit since is invisible to other
        processes and gone when the last connection closes. Our open file
        descriptors show it: the link reads "<path>-wal (deleted)"."""
        gone = f"{self.db.database}-wal (deleted)"
        try:
            fds = os.listdir("/proc/self/fd")
        except OSError:
            return None
        for fd in fds:
            try:
                if os.readlink(f"/proc/self/fd/{fd}") == gone:
                    return (f"the database's write-ahead log ({self.db.database}-wal) was "
                            "deleted while in use; recent changes were not saved")
            except OSError:
                continue
        return None

    def leave_checkpoints(self) -> None:
        # SQLite runs a checkpoint inside whichever commit pushes the WAL past
        # wal_autocheckpoint pages (1,000 by default): every ~80 jobs a worker's
        # commit also copied pages back and waited for fdatasync, and an enqueue
        # that happened to cross the line waited too (a pickup of 983 ms was seen).
        # The supervisor checkpoints every turn instead; the raised threshold is
        # only a bound on the WAL should it stall.
        self.db.pragma("wal_autocheckpoint", WORKER_AUTOCHECKPOINT_PAGES, permanent=True)

    def checkpoint(self) -> None:
        # PASSIVE: copies what no reader still needs and never waits for a lock,
        # so it cannot block a worker or the console.
        self.db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def try_write(self, write: Callable[[], Any]) -> bool:
        # Only if the write lock is free this instant: busy_timeout 0, and not
        # through the writers' flock (db.SqliteDatabase.begin), which would wait
        # for the workers' commits. Outside any transaction only: a caller's
        # open one would be committed by ours.
        if self.db.in_transaction():
            return False
        conn = self.db.connection()
        timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                write()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return True
        except (pw.DatabaseError, pw.InterfaceError, sqlite3.Error):
            return False  # locked, read-only, full: the next reader counts again
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")

    def data_version(self) -> Any:
        # Reads the WAL index header in shared memory: microseconds, no disk I/O.
        # It changes whenever another connection commits.
        return self.db.execute_sql("PRAGMA data_version").fetchone()[0]

    def listen(self, channel: str = CHANNEL) -> None:
        # Every commit writes the WAL: one watch serves every channel.
        from queuectl_tui.engine.wakeup import WalWatch
        self._seen = self.data_version()
        if self._watch is None:
            self._watch = WalWatch.open(self.db.database)

    def _changed(self) -> bool:
        version = self.data_version()
        if version != self._seen:
            self._seen = version
            return True
        return False

    def wait_for_change(self, timeout: float, sleep: Callable[[float], None]) -> bool:
        """Sleep in the kernel until the WAL is written, then confirm with the
        change counter (our own writes touch the WAL too, and do not count).

        Between the settle probes we wait on the watch, not in `sleep`: a write
        landing meanwhile (very often the commit we are waiting for, its frames
        written before its fsync) starts the probes over at once instead of being
        seen up to 16 ms late. Returns within `timeout` (the worker's stop check
        comes between calls); probes still due carry over to the next call.
        Real time, not the worker's clock: these are kernel waits."""
        if self._watch is None:
            return self._poll(timeout, sleep)
        end = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if self._wrote_at is None:
                if now >= end or not self._watch.wait(end - now):
                    return self._changed()  # the slice ended: one probe, in case an event was missed
                self._wrote_at, self._probe = time.monotonic(), 0
                continue
            due = self._wrote_at + SETTLE_PROBES_S[self._probe]
            if now >= due:
                self._probed_at = now
                if self._changed():
                    self._wrote_at = None
                    return True
                self._probe += 1
                if self._probe == len(SETTLE_PROBES_S):
                    self._wrote_at = None  # settled: whatever was written did not commit
                continue
            if now >= end:
                return False
            if self._watch.wait(min(due, end) - now):
                time.sleep(max(0.0, min(self._probed_at + PROBE_GAP_S, end) - time.monotonic()))
                self._wrote_at, self._probe = time.monotonic(), 0

    def _poll(self, timeout: float, sleep: Callable[[float], None]) -> bool:
        waited = 0.0
        while waited < timeout:
            step = min(PROBE_INTERVAL_S, timeout - waited)
            sleep(step)
            waited += step
            if self._changed():
                return True
        return False


class PostgresBackend(Backend):
    name = "postgresql"
    shared_by_hosts = True
    lock_rows = " FOR UPDATE"
    # Conflicts with an UPDATE or DELETE of the row (not with another share): the
    # reader waits for a finishing job's commit, and the finisher for the reader's.
    share_rows = " FOR SHARE"
    # PostgreSQL plans the plain form on the primary key (it assumes blocked jobs
    # are spread evenly over seq) and filtered 1,000,000 finished rows in 190 ms;
    # a row comparison and an ORDER BY state leave job_state_seq the only index that
    # serves: 0.2 ms wherever the page starts.
    blocked_page_sql = ("SELECT seq, id FROM job WHERE (state, seq) > ('blocked', {p}) "
                        "AND state <= 'blocked' ORDER BY state, seq LIMIT {p}")
    # FOR UPDATE SKIP LOCKED: concurrent claimers skip rows another transaction
    # is taking instead of queueing behind it or claiming it twice.
    claim_sql = (
        "UPDATE job SET" + _CLAIM_SET.format(p="%s")
        + "WHERE seq = (" + _CLAIM_PICK.format(p="%s", hint="") + " FOR UPDATE SKIP LOCKED)"
        + _CLAIM_UNLESS_STOPPING.format(p="%s") + CLAIM_RETURNING
    )

    def insert_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        # psycopg2's executemany sends one statement per row; execute_values batches.
        from psycopg2.extras import execute_values
        with pw.__exception_wrapper__:
            execute_values(self.db.cursor(),
                           f"INSERT INTO {table} ({', '.join(columns)}) VALUES %s", rows,
                           page_size=1000)

    def publish_staged(self, batch: str, columns: tuple[str, ...], limit: int,
                       now: float) -> int:
        # Several hosts may publish one batch: each takes rows no other holds
        # (SKIP LOCKED), and moves them with their events in one statement.
        cols = ", ".join(columns)
        return self.db.execute_sql(
            f"WITH moved AS (DELETE FROM staged_job WHERE seq IN (SELECT seq FROM staged_job "
            f"WHERE batch = %s ORDER BY seq LIMIT {int(limit)} FOR UPDATE SKIP LOCKED) "
            f"RETURNING seq, {cols}), "
            f"published AS (INSERT INTO job ({cols}) SELECT {cols} FROM moved ORDER BY seq "
            f"RETURNING id) "
            f"INSERT INTO event (job_id, to_state, at, attempt) "
            f"SELECT id, 'pending', %s, 0 FROM published", (batch, now)).rowcount

    def notify(self, channel: str = CHANNEL) -> None:
        # Delivered at commit, to every listening connection on every host.
        self.db.execute_sql(f"NOTIFY {channel}")

    _listening_on: Any = None  # the connection LISTEN was issued on
    _channel = CHANNEL

    def listen(self, channel: str = CHANNEL) -> None:
        self._channel = channel
        self.db.execute_sql(f"LISTEN {channel}")
        self._listening_on = self.db.connection()

    def wait_for_change(self, timeout: float, sleep: Callable[[float], None]) -> bool:
        """Wait for a NOTIFY. A LISTEN belongs to one connection: after a reconnect
        (the server restarted, the connection was terminated) listen again, or
        every wake-up would wait for the poll interval instead."""
        conn = self.db.connection()
        if conn is not self._listening_on:
            self.listen(self._channel)
            return True  # something may have been missed while we were away
        try:
            if not conn.notifies:
                ready, _, _ = select.select([conn], [], [], max(0.0, timeout))
                if ready:
                    conn.poll()
        except Exception as exc:  # noqa: BLE001 - the driver's own error classes
            self.db.close()  # reconnect (and listen again) on next use
            raise pw.OperationalError(str(exc).strip() or type(exc).__name__) from exc
        if conn.notifies:
            conn.notifies.clear()
            return True
        return False

    def db_time(self) -> float | None:
        return float(self.db.execute_sql(
            "SELECT extract(epoch from clock_timestamp())").fetchone()[0])

    def schema_lock(self) -> None:
        self.db.execute_sql("SELECT pg_advisory_xact_lock(724011)")

    def lock_limited_claims(self) -> None:
        # Held to the claim's commit: the next limited claim waits, then counts
        # with a snapshot that includes this one (READ COMMITTED takes a new
        # snapshot per statement).
        self.db.execute_sql("SELECT pg_advisory_xact_lock(724012)")


def backend_for(db: pw.Database) -> Backend:
    if isinstance(db, pw.PostgresqlDatabase):
        return PostgresBackend(db)
    return SqliteBackend(db)
