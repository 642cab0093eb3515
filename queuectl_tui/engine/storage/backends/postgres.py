"""PostgreSQL's statements: the claim with SKIP LOCKED, row locks, advisory
locks for the schema and limited queues, the server's clock for leases, and
wake-ups by LISTEN/NOTIFY."""

from __future__ import annotations

import select
from typing import Any, Callable

import peewee as pw

from queuectl_tui.engine.storage import driver_errors
from queuectl_tui.engine.storage.backends.base import (CHANNEL, CLAIM_PICK, CLAIM_SET,
                                                       CLAIM_UNLESS_STOPPING, Backend)
from queuectl_tui.engine.storage.columns import CLAIM_RETURNING
from queuectl_tui.engine.storage.driver_errors import as_storage_errors


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
    claim_template = (
        "UPDATE job SET" + CLAIM_SET.format(p="%s")
        + "WHERE seq = (" + CLAIM_PICK.format(p="%s", hint="", extra="{extra}")
        + " FOR UPDATE SKIP LOCKED)"
        + CLAIM_UNLESS_STOPPING.format(p="%s") + CLAIM_RETURNING
    )
    claim_sql = claim_template.format(extra="")

    def insert_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        # psycopg2's executemany sends one statement per row; execute_values batches.
        from psycopg2.extras import execute_values
        with as_storage_errors, pw.__exception_wrapper__:
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
            f"RETURNING id, state) "
            f"INSERT INTO event (job_id, to_state, at, attempt) "
            f"SELECT id, state, %s, 0 FROM published", (batch, now)).rowcount

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
            raise driver_errors.OperationalError(str(exc).strip() or type(exc).__name__) from exc
        if conn.notifies:
            conn.notifies.clear()
            return True
        return False

    def db_time(self) -> float | None:
        return float(self.db.execute_sql(
            "SELECT extract(epoch from clock_timestamp())").fetchone()[0])

    def schema_lock(self) -> None:
        self.db.execute_sql("SELECT pg_advisory_xact_lock(724011)")

    concurrent_claims = True
    # The lock is taken while the statement runs, after its snapshot: only the
    # rules' read may carry it (the counts come in later statements).
    shared_claims_lock = " CROSS JOIN (SELECT pg_advisory_xact_lock_shared(724012)) AS claims_lock"

    def lock_limited_claims(self, shared: bool = False) -> None:
        # Held to the claim's commit: the next claim that counts alone waits,
        # then counts with a snapshot that includes this one (READ COMMITTED
        # takes a new snapshot per statement). Shared holders only exclude those.
        self.db.execute_sql("SELECT pg_advisory_xact_lock_shared(724012)" if shared
                            else "SELECT pg_advisory_xact_lock(724012)")

    starts_in_claim = True
    _prepared_by: dict[int, tuple[Any, dict[str, str]]]

    def __init__(self, db: pw.Database) -> None:
        super().__init__(db)
        self._prepared_by = {}  # id(connection) -> (connection, SQL text -> name)

    PREPARED_PER_CONNECTION = 64  # gates with many full keys make many texts: bounded

    def run(self, sql: str, params: Any = ()) -> Any:
        """Prepared once per connection (`PREPARE`, then `EXECUTE`): these
        statements are small, and planning them cost more than running them
        (the rules' read: 190 of 383 µs). A new connection (a reconnect)
        prepares again. Not for a transaction-pooling PgBouncer (docs)."""
        conn = self.db.connection()
        held = self._prepared_by.get(id(conn))
        if held is None or held[0] is not conn:
            held = self._prepared_by[id(conn)] = (conn, {})
        names = held[1]
        name = names.get(sql)
        if name is None:
            if len(names) >= self.PREPARED_PER_CONNECTION:
                return self.db.execute_sql(sql, params)
            name = f"queuectl_{len(names) + 1}"
            pieces = sql.split("%s")
            numbered = "".join(f"{piece}${i}" for i, piece in enumerate(pieces[:-1], 1))
            self.db.execute_sql(f"PREPARE {name} AS {numbered}{pieces[-1]}")
            names[sql] = name
        count = sql.count("%s")
        return self.db.execute_sql(
            f"EXECUTE {name}" + (f"({', '.join(['%s'] * count)})" if count else ""), params)

    def claim_with_start(self, extra: str, per_key: bool) -> str:
        # The start is logged, and the window's older starts of that queue (or
        # key) trimmed, by the claim's own statement: no round trip of its own.
        key, which = ("key", "key IS NOT NULL") if per_key else ("''", "TRUE")
        return (f"WITH c AS ({self.claim_template.format(extra=extra)}), "
                f"s AS (INSERT INTO queue_start (queue, key, at) SELECT queue, {key}, %s "
                f"FROM c WHERE {which}), "
                f"d AS (DELETE FROM queue_start WHERE queue IN (SELECT queue FROM c) "
                f"AND key IN (SELECT {key} FROM c WHERE {which}) AND at <= %s) "
                f"SELECT * FROM c")

    def record_start(self, queue: str, key: str, now: float, before: float) -> None:
        # One round trip for the insert and the trim.
        self.db.execute_sql(
            "WITH gone AS (DELETE FROM queue_start WHERE queue = %s AND key = %s AND at <= %s) "
            "INSERT INTO queue_start (queue, key, at) VALUES (%s, %s, %s)",
            (queue, key, before, queue, key, now))
