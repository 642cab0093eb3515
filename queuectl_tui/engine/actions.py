"""The operator actions of the `Queue` facade: what a person does to jobs and
workers, each recorded in the audit trail (engine/audit.py) in the
transaction that made its change, so an action that failed leaves no entry
and one that happened cannot lack one.

A mixin of `Queue` (engine/queue.py), kept apart so the facade stays one
screen of delegation per concept; every method hands the work to the module
named for it (operator.py, hold.py, edit.py) with the Queue's `Context`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from queuectl_tui.engine.context import Context, acting
from queuectl_tui.engine.procs import DEFAULT_GRACE_S

if TYPE_CHECKING:
    import peewee as pw

    from queuectl_tui.engine.operator import RunAgain


class OperatorActions:
    """What a person does, through the facade; `Queue` provides `ctx` and `db`."""

    ctx: Context

    @property
    def db(self) -> pw.Database:
        return self.ctx.db

    def act_as(self, via: str) -> None:
        """Record this process's operator actions as a person's (engine/audit.py):
        the faces call this; workers and pools never do."""
        self.ctx.actor = acting(via)

    def audit(self, *, since: float | None = None, limit: int | None = None,
              before_seq: int | None = None, job_id: str | None = None
              ) -> list[dict[str, Any]]:
        """Operator actions, newest first."""
        from queuectl_tui.engine import audit
        return list(audit.entries(since=since, limit=limit, before_seq=before_seq,
                                  job_id=job_id))

    def retry_dead(self, job_ids: Iterable[str]) -> RunAgain:
        from queuectl_tui.engine import audit, operator
        with self.db.atomic():
            moved = operator.retry_dead(self.ctx, job_ids)
            audit.record(self.ctx, "dlq retry", jobs=moved)
            return moved

    def retry_all_dead(self, queue: str | None = None) -> RunAgain:
        from queuectl_tui.engine import audit, operator
        with self.db.atomic():
            moved = operator.retry_all_dead(self.ctx, queue)
            audit.record(self.ctx, "dlq retry", jobs=moved, target=queue,
                         detail={"all": True})
            return moved

    def cancel(self, job_ids: Iterable[str],
               grace: float = DEFAULT_GRACE_S) -> list[tuple[str, str]]:
        from queuectl_tui.engine import audit, operator
        with self.db.atomic():
            done = operator.cancel(self.ctx, job_ids, grace)
            audit.record(self.ctx, "cancel", jobs=[job_id for job_id, _ in done])
            return done

    def hold(self, job_ids: Iterable[str]) -> list[tuple[str, str]]:
        """Put waiting jobs aside: none starts until released (engine/hold.py)."""
        from queuectl_tui.engine import audit, hold
        with self.db.atomic():
            done = hold.hold(self.ctx, job_ids)
            audit.record(self.ctx, "hold", jobs=[job_id for job_id, _ in done])
            return done

    def release_held(self, job_ids: Iterable[str]) -> list[tuple[str, str, str | None]]:
        """Held jobs go on: (id, pending | blocked | cancelled, why). (`release`
        is a worker's: it gives back a claim.)"""
        from queuectl_tui.engine import audit, hold
        with self.db.atomic():
            done = hold.release(self.ctx, job_ids)
            audit.record(self.ctx, "release", jobs=[job_id for job_id, _, _ in done])
            return done

    def edit(self, job_id: str, changes: dict[str, Any],
             expect: tuple[str, float] | None = None) -> dict[str, Any]:
        """Change a job that has not started; returns it as edited (engine/edit.py)."""
        from queuectl_tui.engine import audit, edit
        with self.db.atomic():
            job = edit.edit(self.ctx, job_id, changes, expect)
            audit.record(self.ctx, "edit", jobs=[job_id], detail=sorted(changes))
            return job

    def pause(self, job_ids: Iterable[str]) -> list[tuple[str, str]]:
        """Stop running jobs' processes where they run (SIGSTOP), keeping their lease."""
        from queuectl_tui.engine import audit, running
        with self.db.atomic():
            done = running.pause(self.ctx, job_ids)
            audit.record(self.ctx, "pause", jobs=[job_id for job_id, _ in done])
            return done

    def resume(self, job_ids: Iterable[str]) -> list[tuple[str, str]]:
        from queuectl_tui.engine import audit, running
        with self.db.atomic():
            done = running.resume(self.ctx, job_ids)
            audit.record(self.ctx, "resume", jobs=[job_id for job_id, _ in done])
            return done

    def requeue(self, job_ids: Iterable[str]) -> RunAgain:
        from queuectl_tui.engine import audit, operator
        with self.db.atomic():
            moved = operator.requeue(self.ctx, job_ids)
            audit.record(self.ctx, "requeue", jobs=moved)
            return moved

    def requeue_all(self, state: str) -> RunAgain:
        from queuectl_tui.engine import audit, operator
        with self.db.atomic():
            moved = operator.requeue_all(self.ctx, state)
            audit.record(self.ctx, "requeue", jobs=moved, detail={"all": str(state)})
            return moved

    def delete(self, job_ids: Iterable[str]) -> list[str]:
        from queuectl_tui.engine import audit, operator
        with self.db.atomic():
            gone = operator.delete(self.ctx, job_ids)
            audit.record(self.ctx, "delete", jobs=gone)
            return gone

    def purge_dead(self) -> list[str]:
        from queuectl_tui.engine import audit, operator
        with self.db.atomic():
            gone = operator.purge_dead(self.ctx)
            audit.record(self.ctx, "dlq purge", jobs=gone)
            return gone

    def stop_workers(self, worker_ids: list[str] | None = None,
                     now_grace: float | None = None, host: str | None = None,
                     pool: int | None = None) -> list[str]:
        from queuectl_tui.engine import audit, operator
        with self.db.atomic():
            stopped = operator.stop_workers(self.ctx, worker_ids, now_grace, host, pool)
            audit.record(self.ctx, "worker stop", target=" ".join(stopped) or None,
                         detail={k: v for k, v in (("now_grace", now_grace), ("host", host),
                                                   ("pool", pool)) if v is not None} or None)
            return stopped
