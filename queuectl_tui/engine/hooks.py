"""Finish hooks: a command run after a job reaches completed, dead or cancelled.

The config key `finish-hook` names it (a queue may override it, or turn it off
with an empty command). The transaction that finishes the job also writes a
`hook_run` row (an outbox), so the hook runs after the outcome is committed,
whichever process finished the job (a worker, a rescuer, `cancel`, a
dependency's failure), and a crash after the commit delays the hook instead of
losing it; the job itself never runs again for it. Supervisors take the rows
(workers/services/hooks.py) and run them, bounded by `finish-hook-timeout`; the commit
also sends a wake-up (HOOKS_CHANNEL on PostgreSQL, the WAL's own write on
SQLite), so a runner takes a row as soon as it exists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import peewee as pw

from queuectl_tui.engine import config
from queuectl_tui.engine.storage.models import HookRun, NamedQueue

CACHE_S = 1.0  # a config change reaches running workers within a second
# A hook whose runner died this often while running it (SIGKILL, a crash, the
# machine going down: it may be the hook's doing) is dropped. A hook stopped
# with its pool (a graceful stop, `handed_back`) is not counted.
MAX_TRIES = 3


@dataclass
class HookConfig:
    """The hook commands in force, read at most once a second per process."""

    default: str = ""
    per_queue: dict[str, str] = field(default_factory=dict)
    read_at: float = -1e9

    def command_for(self, queue: str) -> str:
        return self.per_queue.get(queue, self.default)

    def fresh(self) -> "HookConfig":
        now = time.monotonic()
        if now - self.read_at < CACHE_S:
            return self
        return HookConfig(
            default=str(config.get("finish-hook") or ""),
            per_queue={row.name: row.finish_hook for row in
                       NamedQueue.select(NamedQueue.name, NamedQueue.finish_hook)
                       .where(NamedQueue.finish_hook.is_null(False))},
            read_at=now)


def record(command: str, *, job_id: str, state: str, exit_code: int | None, queue: str,
           attempt: int, now: float) -> None:
    """Inside the finishing transaction."""
    HookRun.insert(job_id=job_id, state=state, exit_code=exit_code, queue=queue,
                   attempt=attempt, command=command, created_at=now).execute()


def take(db: pw.Database, owner: str, now: float, limit: int, hold_s: float,
         lock_rows: str = "") -> list[HookRun]:
    """Claim up to `limit` hook runs nobody holds (or whose holder's time ran out)."""
    p = db.param
    skip = " SKIP LOCKED" if lock_rows else ""
    with db.atomic():
        rows = db.execute_sql(
            f"UPDATE hook_run SET taken_until = {p}, taken_by = {p}, tries = tries + 1 "
            f"WHERE seq IN (SELECT seq FROM hook_run WHERE taken_until IS NULL "
            f"OR taken_until < {p} ORDER BY seq LIMIT {int(limit)}{lock_rows}{skip}) "
            "RETURNING seq, job_id, state, exit_code, queue, attempt, command, tries",
            (now + hold_s, owner, now)).fetchall()
    return [HookRun(seq=r[0], job_id=r[1], state=r[2], exit_code=r[3], queue=r[4],
                    attempt=r[5], command=r[6], tries=r[7]) for r in rows]


def waiting(db: pw.Database, now: float) -> bool:
    """Whether some hook run is there to take: a read, so a runner woken by
    every commit of a busy pool takes the write lock only when it has work."""
    p = db.param
    return db.execute_sql(f"SELECT 1 FROM hook_run WHERE taken_until IS NULL "
                          f"OR taken_until < {p} LIMIT 1", (now,)).fetchone() is not None


def settle(db: pw.Database, owner: str, done_seqs: list[int], back_seqs: list[int]) -> None:
    """In one transaction: forget the runs that ended (ran, failed, timed out,
    dropped) and hand back the ones stopped with the pool, their take not
    counted as a try, for the next runner at once."""
    if not done_seqs and not back_seqs:
        return
    p = db.param
    with db.atomic():
        for start in range(0, len(done_seqs), 500):
            chunk = done_seqs[start:start + 500]
            db.execute_sql(f"DELETE FROM hook_run WHERE seq IN ({', '.join([p] * len(chunk))})",
                           chunk)
        for start in range(0, len(back_seqs), 500):
            chunk = back_seqs[start:start + 500]
            db.execute_sql(
                f"UPDATE hook_run SET taken_until = NULL, taken_by = NULL, "
                f"tries = tries - 1 WHERE taken_by = {p} AND seq IN "
                f"({', '.join([p] * len(chunk))})", [owner, *chunk])


def env_for(run: HookRun) -> dict[str, str]:
    """What the hook's command sees, as pueue's callback and task-spooler's
    TS_ONFINISH give theirs."""
    return {"QUEUECTL_JOB_ID": run.job_id, "QUEUECTL_JOB_STATE": run.state,
            "QUEUECTL_EXIT_CODE": "" if run.exit_code is None else str(run.exit_code),
            "QUEUECTL_QUEUE": run.queue, "QUEUECTL_ATTEMPT": str(run.attempt)}
