"""The DLQ's failure groups: dead jobs counted by their signature
(engine/signatures.py), and the group a person names by its short id.

A group is every dead job with one signature. It has no row of its own: its
id is a hash of the signature, so it needs no bookkeeping, stays the same as
long as its jobs are dead and comes back the same when the failure does. Every
read here goes through the partial index `job_dead_sig` (storage/backends/base.py),
which holds every column the grouping needs: one GROUP BY over the index,
never a visit to the rows (measured in docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import peewee as pw

from queuectl_tui.clock import iso
from queuectl_tui.engine import queues, signatures
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.errors import NotFound, UsageError

# Written out, not bound: SQLite uses a partial index only for a condition it
# can see is the index's own.
DEAD_ROWS = "state = 'dead'"
ID_CHARS = 8  # a group id's length: as many hex digits of the signature's SHA-1


@dataclass(frozen=True)
class FailureGroup:
    """One signature's dead jobs: how many, when the first and the last died,
    the newest one (to look at), and their queues, most members first."""

    group: str
    signature: str  # signatures.NONE: dead before signatures were kept
    count: int
    first_seen: float | None
    last_seen: float | None
    sample: str | None
    queues: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        """The shape `dlq groups --json` prints."""
        return {"group": self.group, "signature": self.signature or None,
                "count": self.count, "first_seen": iso(self.first_seen),
                "last_seen": iso(self.last_seen), "sample_id": self.sample,
                "queues": list(self.queues)}


def read(queue: str | None = None) -> list[FailureGroup]:
    """Every group of the DLQ (or of one queue's dead jobs), most members first."""
    db = Job._meta.database
    p = db.param
    where, params = (f" AND queue = {p}", [queues.check_name(queue)]) if queue else ("", [])
    rows = db.execute_sql(
        f"SELECT failure_sig, queue, COUNT(*), MIN(finished_at), MAX(finished_at), MAX(seq) "
        f"FROM job WHERE {DEAD_ROWS}{where} GROUP BY failure_sig, queue", params).fetchall()
    merged: dict[str, dict[str, Any]] = {}
    for sig, queue_name, count, first, last, newest in rows:
        g = merged.setdefault(sig or signatures.NONE, {"count": 0, "first": None, "last": None,
                                                       "newest": 0, "queues": {}})
        g["count"] += count
        g["first"] = first if g["first"] is None or (first is not None and first < g["first"]) \
            else g["first"]
        g["last"] = last if g["last"] is None or (last is not None and last > g["last"]) \
            else g["last"]
        g["newest"] = max(g["newest"], newest)
        g["queues"][queue_name] = g["queues"].get(queue_name, 0) + count
    ids = _ids_of([g["newest"] for g in merged.values()])
    found = [FailureGroup(signatures.group_id(sig), sig, g["count"], g["first"], g["last"],
                          ids.get(g["newest"]),
                          tuple(sorted(g["queues"], key=lambda q: (-g["queues"][q], q))))
             for sig, g in merged.items()]
    found.sort(key=lambda g: (-g.count, -(g.last_seen or 0.0), g.signature))
    return found


def one(text: str, queue: str | None = None) -> FailureGroup:
    """The group whose id is or begins with `text` (engine's `resolve`), as
    `read` counts it; of one queue, its members there (perhaps none)."""
    sig = resolve(text)
    for group in read(queue):
        if group.signature == sig:
            return group
    return FailureGroup(signatures.group_id(sig), sig, 0, None, None, None, ())


def _ids_of(seqs: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(seqs), 500):
        chunk = seqs[start:start + 500]
        found.update(Job.select(Job.seq, Job.id).where(Job.seq.in_(chunk)).tuples())
    return found


def dead_signatures() -> set[str]:
    """The signature of every group the DLQ has now."""
    db = Job._meta.database
    rows = db.execute_sql(f"SELECT DISTINCT failure_sig FROM job WHERE {DEAD_ROWS}")
    return {sig or signatures.NONE for (sig,) in rows.fetchall()}


def ids(db: pw.Database | None = None) -> list[str]:
    """Every group's id, in order (tab completion of `--group`; `db` is the
    database the proxy already serves)."""
    return sorted(signatures.group_id(sig) for sig in dead_signatures())


def check_id(text: str) -> str:
    """A group id as typed: 1 to 8 hex digits (any case), else a usage error."""
    gid = text.strip().lower()
    if not 1 <= len(gid) <= ID_CHARS or any(c not in "0123456789abcdef" for c in gid):
        raise UsageError(f"{text[:40]!r} is not a group id: 1 to {ID_CHARS} hex digits, "
                         "as `queuectl dlq groups` shows them")
    return gid


def resolve(text: str) -> str:
    """The signature of the one group whose id is or begins with `text`:
    NotFound (exit 3) if none, a usage error naming them if several."""
    gid = check_id(text)
    found = {signatures.group_id(sig): sig for sig in dead_signatures()
             if signatures.group_id(sig).startswith(gid)}
    if not found:
        raise NotFound(f"no DLQ group {gid!r} (its jobs may have been retried or deleted; "
                       "`queuectl dlq groups` lists the groups)")
    if len(found) > 1:
        raise UsageError(f"group {gid!r} is ambiguous: it begins {', '.join(sorted(found))}; "
                         "give more of it")
    return next(iter(found.values()))


def matching(prefixes: Iterable[str]) -> list[str]:
    """The signatures of every group whose id begins with one of `prefixes`
    (a filter's alternatives: an unknown one matches nothing)."""
    wanted = tuple(p.strip().lower() for p in prefixes)
    return sorted(sig for sig in dead_signatures()
                  if signatures.group_id(sig).startswith(wanted))


def members(sigs: str | list[str]) -> pw.Expression:
    """The condition that picks the dead jobs of these groups (on the partial
    index). A job retried from a group keeps its signature until it dies again,
    but is no longer the group's."""
    wanted = [sigs] if isinstance(sigs, str) else sigs
    if not wanted:
        return pw.SQL("1 = 0")
    named = [s for s in wanted if s != signatures.NONE]
    found = Job.failure_sig.in_(named) if named else None
    if len(named) < len(wanted):
        unsigned = Job.failure_sig.is_null() | (Job.failure_sig == signatures.NONE)
        found = unsigned if found is None else (found | unsigned)
    return pw.SQL(DEAD_ROWS) & found
