"""The contract every backend keeps, and the SQL they share.

Everything else in the engine is plain Peewee. A backend holds the few
statements that differ between SQLite and PostgreSQL: the claim (one
`UPDATE … RETURNING` picking the next due job), the indexes Peewee cannot
declare (partial ones), and the cheap "has anything changed?" wait idle
workers use instead of hammering the claim. Subclasses differ only in
statements, not in meaning.
"""

from __future__ import annotations

from typing import Any, Callable

import peewee as pw

from queuectl_tui.engine.storage.columns import Claimed
from queuectl_tui.engine.storage.driver_errors import as_storage_errors

CHANNEL = "queuectl_jobs"
HOOKS_CHANNEL = "queuectl_hooks"  # a finish hook queued (engine/hooks.py): wakes hook runners

CLAIM_SET = """
    prev_state = state, state = 'processing', attempts = attempts + 1, runs = runs + 1,
    worker_id = {p}, claim_token = {p}, started_at = {p}, updated_at = {p},
    lease_expires_at = {p}, finished_at = NULL, exit_code = NULL,
    run_pid = NULL, run_host = {p}, run_pool = {p}, devices = NULL,
    snooze_for = NULL, extended_by = NULL, pause_requested = FALSE, paused_at = NULL,
    paused_for = NULL
"""
CLAIM_PICK = """
    SELECT seq FROM job {hint}
    WHERE queue = {p} AND state IN ('pending', 'failed') AND run_at <= {p}{extra}
    ORDER BY priority DESC, run_at, seq
    LIMIT 1
"""
# A worker asked to stop takes nothing more (its outcome's commit used to read
# the flag with a statement of its own before claiming).
CLAIM_UNLESS_STOPPING = """
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
    claim_template: str  # claim_sql with {extra} where a gate's conditions go
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
              host: str, queues: list[str], pool: str | None = None,
              gates: dict[str, Any] | None = None,
              starts: dict[str, tuple[bool, float]] | None = None) -> Claimed | None:
        """Take the next due job of the first of `queues` that has one; the caller
        holds a write transaction and has left out paused and full queues.
        A queue with a gate (engine/flow.py: keys at their limit, the pool's free
        capacity) is claimed with the gate's conditions added to the pick.
        `starts`: rate-limited queues (per key?, the window's start): a backend
        that can (`starts_in_claim`) logs the start in the claim's statement."""
        params = (worker_id, token, now, now, lease_until, host, pool)
        for queue in queues:
            gate = gates.get(queue) if gates else None
            extra, extra_params = ("", []) if gate is None else gate.sql(self.db.param)
            start = starts.get(queue) if starts and self.starts_in_claim else None
            if start is None:
                sql, tail = (self.claim_sql if gate is None
                             else self.claim_template.format(extra=extra)), ()
            else:
                sql, tail = self.claim_with_start(extra, start[0]), (now, start[1])
            args = (*params, queue, now, *extra_params, worker_id, *tail)
            row = (self.db.execute_sql(sql, args) if gate is None and start is None
                   else self.run(sql, args)).fetchone()
            if row:
                return Claimed(*row)
        return None

    starts_in_claim = False

    def run(self, sql: str, params: Any = ()) -> Any:
        """A statement run on every claim of a ruled queue (engine/headroom.py,
        the gated claim): PostgreSQL prepares it once per connection."""
        return self.db.execute_sql(sql, params)

    def claim_with_start(self, extra: str, per_key: bool) -> str:
        """The claim that also logs its start (PostgreSQL: engine/rates.py)."""
        raise NotImplementedError

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

    concurrent_claims = False  # claims of several processes run side by side (PostgreSQL)
    shared_claims_lock = ""  # a FROM item taking the claims' lock shared (PostgreSQL)

    def lock_limited_claims(self, shared: bool = False) -> None:
        """Before counting what a queue's rules limit (PostgreSQL): alone, claims
        that may take from limited queues happen one at a time; `shared`, they
        run side by side but never beside one that counts alone
        (engine/headroom.py)."""

    def record_start(self, queue: str, key: str, now: float, before: float) -> None:
        """A start in a rate's log, and that queue's (or key's) starts at or
        before `before` gone: a seek on (queue, key, at), not a walk of the log."""
        p = self.db.param
        self.db.execute_sql(f"INSERT INTO queue_start (queue, key, at) VALUES ({p}, {p}, {p})",
                            (queue, key, now))
        self.db.execute_sql(f"DELETE FROM queue_start WHERE queue = {p} AND key = {p} "
                            f"AND at <= {p}", (queue, key, before))

    def insert_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """Many rows in the caller's transaction, without an ORM in the loop."""
        p = self.db.param
        # driver errors as Peewee's (IntegrityError, ...), and those as storage errors
        with as_storage_errors, pw.__exception_wrapper__:
            self.db.cursor().executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join([p] * len(columns))})", rows)

    def publish_staged(self, batch: str, columns: tuple[str, ...], limit: int,
                       now: float) -> int:
        """Move up to `limit` of a batch's rows from staged_job into job, in the
        file's order, each with its event (to `pending`, or `held`: the state
        it was staged in), inside the caller's
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
                            f"SELECT id, state, {p}, 0 FROM job WHERE seq > {p}",
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
