"""What a running job writes about itself: its progress (`queuectl progress`,
or its worker reading its output lines), checked against its run.

Progress is advisory. A report is written only while the job runs, by its own
run when the caller holds the run's claim token, and it waits at most about
WAIT_S for the write lock: a bulk enqueue holding the lock longer makes the
report lapse (`report` returns False), never the job wait or fail. A report
without a message keeps this run's message and drops an earlier run's.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from queuectl_tui.engine.context import Context
from queuectl_tui.engine.progress import Progress, shown
from queuectl_tui.engine.states import State
from queuectl_tui.engine.storage.driver_errors import StorageUnavailable
from queuectl_tui.engine.storage.errors import BUSY_TIMEOUT_S, is_busy
from queuectl_tui.errors import Conflict, NotFound

# A report's wait for the write lock: the writers' flock, then SQLite's own
# busy wait (PostgreSQL: a lock timeout on the job's row), about 0.5 s in all.
LOCK_WAIT_S = 0.4
BUSY_WAIT_S = 0.1
WAIT_S = LOCK_WAIT_S + BUSY_WAIT_S

_KEEP_MESSAGE = "CASE WHEN progress_at >= started_at THEN progress_message END"


def report(ctx: Context, job_id: str, token: str | None, progress: Progress,
           message: str | None, set_message: bool) -> bool:
    """`queuectl progress`: record a running job's progress (and, with
    `set_message`, its message). With `token`, only the run holding that claim
    counts. False: the database stayed locked past WAIT_S, nothing recorded.
    NotFound, or Conflict when the job is not running (or runs another claim)."""
    p = ctx.db.param
    new_message = p if set_message else _KEEP_MESSAGE
    values: list[Any] = [progress.done, progress.total] + ([message] if set_message else [])
    where, args = _running(p, "id", job_id, token)
    try:
        with briefly(ctx) as first:
            changed = ctx.db.execute_sql(
                f"{first}UPDATE job SET progress_done = {p}, progress_total = {p}, "
                f"progress_message = {new_message}, progress_at = {p} WHERE {where}",
                (*values, ctx.clock.now(), *args)).rowcount
    except StorageUnavailable as exc:
        if lock_wait_ran_out(exc):
            return False
        raise
    if not changed:
        refuse(ctx, job_id, token, "progress")
    return True


def record(ctx: Context, seq: int, token: str, progress: Progress) -> bool:
    """A worker's write of what its job's output said; False: not recorded (the
    database stayed locked, or the claim was lost: the run ends soon then)."""
    p = ctx.db.param
    where, args = _running(p, "seq", seq, token)
    try:
        with briefly(ctx) as first:
            return bool(ctx.db.execute_sql(
                f"{first}UPDATE job SET progress_done = {p}, progress_total = {p}, "
                f"progress_message = {_KEEP_MESSAGE}, progress_at = {p} WHERE {where}",
                (progress.done, progress.total, ctx.clock.now(), *args)).rowcount)
    except StorageUnavailable as exc:
        if lock_wait_ran_out(exc):
            return False
        raise


def _running(p: str, column: str, key: Any, token: str | None) -> tuple[str, tuple]:
    where = f"{column} = {p} AND state = '{State.PROCESSING.value}'"
    if token is None:
        return where, (key,)
    return where + f" AND claim_token = {p}", (key, token)


def refuse(ctx: Context, job_id: str, token: str | None, what: str) -> None:
    """Why a write a running job makes about itself changed nothing."""
    p = ctx.db.param
    row = ctx.db.execute_sql(f"SELECT state, claim_token FROM job WHERE id = {p}",
                             (job_id,)).fetchone()
    if row is None or row[0] == State.STAGED:
        raise NotFound(f"no job with id {job_id!r}")
    if row[0] != State.PROCESSING:
        raise Conflict(f"job {job_id} is {row[0]}, not running: {what} is recorded only "
                       "while it runs; nothing was changed")
    raise Conflict(f"job {job_id} runs again under another claim (this run was rescued or "
                   f"stopped): its {what} was not recorded")


@contextmanager
def briefly(ctx: Context) -> Iterator[str]:
    """A write transaction that waits at most about WAIT_S for the write lock;
    it gives what its one statement must start with (PostgreSQL: its settings,
    sent in the same round trip). It commits without waiting for the disk
    (SQLite: synchronous NORMAL; PostgreSQL: synchronous_commit off): a report
    lost to a power cut costs nothing, and a flush per report would hold up
    the pool's commits."""
    db = ctx.db
    if ctx.backend.name != "sqlite":
        with db.atomic():
            yield (f"SET LOCAL lock_timeout = '{int(WAIT_S * 1000)}ms'; "
                   "SET LOCAL synchronous_commit = off; ")
        return
    lock = db.writer_lock
    conn = db.connection()
    synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
    before, lock.wait_s = lock.wait_s, LOCK_WAIT_S
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_WAIT_S * 1000)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        with db.atomic():
            yield ""
    finally:
        lock.wait_s = before
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute(f"PRAGMA synchronous = {int(synchronous)}")


def lock_wait_ran_out(exc: BaseException) -> bool:
    """A SQLite lock still held, or PostgreSQL's lock_timeout (55P03)."""
    if is_busy(exc):
        return True
    orig = getattr(exc, "orig", None)
    return getattr(orig, "pgcode", None) == "55P03" or "lock timeout" in str(exc).lower()


# ---------------------------------------------------------------- reads

def running(db: Any) -> list[tuple[str, str, float]]:
    """(queue, job id, fraction) of every running job whose current run has
    reported progress: the metrics' gauge (only running jobs: few rows)."""
    rows = db.execute_sql(
        "SELECT queue, id, progress_done, progress_total, progress_message, progress_at, "
        f"started_at FROM job WHERE state = '{State.PROCESSING.value}' "
        "AND progress_at IS NOT NULL ORDER BY queue, id").fetchall()
    found = []
    for queue, job_id, done, total, message, at, started in rows:
        seen = shown(done, total, message, at, started, State.PROCESSING.value)
        if seen is not None:
            found.append((queue, job_id, seen.fraction))
    return found
