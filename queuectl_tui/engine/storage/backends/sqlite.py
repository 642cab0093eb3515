"""SQLite's statements: the claim under BEGIN IMMEDIATE with the index it must
use, checkpoints left to the supervisor, and idle workers woken by writes to
the WAL (inotify, `wakeup.py`) confirmed by the change counter."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any, Callable

import peewee as pw

from queuectl_tui.engine.storage.backends.base import (CHANNEL, CLAIM_PICK, CLAIM_SET,
                                                       CLAIM_UNLESS_STOPPING, Backend)
from queuectl_tui.engine.storage.columns import CLAIM_RETURNING

PROBE_INTERVAL_S = 0.005  # SQLite without inotify: how often an idle worker polls
# After a WAL write, the writer publishes the commit a moment later (after its
# fsync, which writes nothing we can watch): look at the change counter at these
# times (seconds after the latest write) before deciding nothing was committed.
SETTLE_PROBES_S = (0.0, 0.001, 0.003, 0.007, 0.015, 0.031)
# A new write starts the probes over, but they stay this far apart: a checkpoint
# copying thousands of pages writes the database file thousands of times.
PROBE_GAP_S = 0.001

WORKER_AUTOCHECKPOINT_PAGES = 25_000  # 100 MB of WAL: a bound, not the usual path


class SqliteBackend(Backend):
    name = "sqlite"
    # The claim runs inside BEGIN IMMEDIATE (the database's lock_type), so the
    # sub-select and the update see the same snapshot and no other writer can
    # interleave: SQLite has one writer at a time.
    # INDEXED BY: the planner would otherwise pick (state, seq) and sort every
    # claimable row on each claim; the partial index hands over the next job at once.
    claim_template = (
        "UPDATE job SET" + CLAIM_SET.format(p="?")
        + "WHERE seq = (" + CLAIM_PICK.format(p="?", hint="INDEXED BY job_claim_q",
                                              extra="{extra}") + ")"
        + CLAIM_UNLESS_STOPPING.format(p="?") + CLAIM_RETURNING
    )
    claim_sql = claim_template.format(extra="")

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
        # through the writers' flock (databases.SqliteDatabase.begin), which would wait
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
        from queuectl_tui.engine.storage.wakeup import WalWatch
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
