"""The audit trail: every operator action, with who did it, what, on which
jobs or settings, and when (`queuectl audit`, the console's History view).

An action is recorded in the transaction that made its change, so the trail
and the data cannot disagree: an action that failed left no row, one that
happened cannot lack one. Only actions taken by a person are recorded (a
process whose face set `ctx.actor`); the pool's own moves (claims, retries,
rescues, pruning by retention) are the job history's, not the trail's.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

from queuectl_tui.clock import iso
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.storage.models import AuditEntry

AUDIT_IDS = 50  # job ids named per action; the count says how many in all


def record(ctx: Context, action: str, *, jobs: Iterable[str] = (), target: str | None = None,
           detail: Any = None) -> None:
    """Note one action; callers hold the transaction that made the change.
    `detail` is anything JSON can say (the new value of a setting, a filter)."""
    actor = ctx.actor
    if actor is None:
        return
    ids = list(jobs)
    AuditEntry.insert(
        at=ctx.clock.now(), user=actor.user, host=actor.host, via=actor.via,
        token=actor.token, action=action, target=target, jobs=len(ids),
        job_ids=" ".join(ids[:AUDIT_IDS]) or None,
        detail=None if detail is None else json.dumps(detail, sort_keys=True, default=str),
    ).execute()


def entries(*, since: float | None = None, limit: int | None = None,
            before_seq: int | None = None, job_id: str | None = None
            ) -> Iterator[dict[str, Any]]:
    """Actions newest first; `before_seq` pages backwards (keyset)."""
    query = AuditEntry.select()
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    if job_id is not None:  # a bounded list of ids: the named ones match
        query = query.where(AuditEntry.job_ids.contains(job_id))
    query = query.order_by(AuditEntry.seq.desc())
    if limit is not None:
        query = query.limit(limit)
    for row in query.iterator():
        named = row.job_ids.split() if row.job_ids else []
        if job_id is not None and job_id not in named:
            continue
        yield entry_dict(row, named)


def entry_dict(row: AuditEntry, named: list[str] | None = None) -> dict[str, Any]:
    named = named if named is not None else (row.job_ids.split() if row.job_ids else [])
    who = f"web:{row.token}" if row.token else f"{row.user}@{row.host}"
    return {"seq": row.seq, "at": iso(row.at), "who": who, "user": row.user,
            "host": row.host, "via": row.via, "token": row.token, "action": row.action,
            "target": row.target, "jobs": row.jobs, "job_ids": named,
            "detail": json.loads(row.detail) if row.detail else None}


def prune(before: float) -> int:
    """Drop actions older than `before` (retention)."""
    return AuditEntry.delete().where(AuditEntry.at < before).execute()
