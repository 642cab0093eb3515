"""Retention: finished jobs leave the database once older than their keep time.

A job that reached `completed`, `dead` or `cancelled` is kept for the config's
`retention-<state>` seconds (a queue may override it; 0 keeps for ever), then
pruned: its row, its events, its attempt records and its log file go together.

Pruning works in small batches (one short write transaction each, a pause
between them) so workers' claims and outcomes never wait long behind it. The
pools' supervisors prune by themselves; a lease row in `meta` makes sure only
one of them does at a time, on however many hosts. `queuectl prune` runs the same
code on demand.

Pruned jobs are counted in `meta`, in the same transaction as the delete:
per state (`pruned.<state>`, for the console) and per state and queue
(`removed.<state>.<queue>`, which `delete` and `dlq purge` add to as well), so
jobs finished so far can be told after their rows are gone: `engine/metrics.py`
adds these to the rows still there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

import peewee as pw

from queuectl_tui.engine import audit, config, counts, logs, queues
from queuectl_tui.engine.storage.models import Meta, NamedQueue
from queuectl_tui.engine.states import FINAL, check_state
from queuectl_tui.errors import UsageError

if TYPE_CHECKING:
    from queuectl_tui.engine.context import Context

BATCH_ROWS = 500  # jobs per transaction: a few milliseconds of write lock
PAUSE_S = 0.02  # between batches: writers waiting for the lock get it
LEASE_KEY = "pruner"
LEASE_S = 60.0
STATES = FINAL  # completed, dead, cancelled


@dataclass
class Pruned:
    """What a prune removed (or, dry, would remove), per state."""

    counts: dict[str, int] = field(default_factory=dict)
    seqs: list[int] = field(default_factory=list)  # for the caller's log files

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, state: str, n: int) -> None:
        if n:
            self.counts[state] = self.counts.get(state, 0) + n


@dataclass(frozen=True)
class Rule:
    """Prune jobs of `state` finished before `before`, in `queue` (None: every
    queue except those in `except_queues`, which have rules of their own)."""

    state: str
    before: float
    queue: str | None = None
    except_queues: tuple[str, ...] = ()


def rules_now(defaults: dict[str, float], now: float, *, queue: str | None = None,
              states: Iterable[str] = STATES,
              older_than: float | None = None) -> list[Rule]:
    """The rules to apply now. `defaults` maps a state to its config keep time;
    `older_than` (from `prune --older-than`) replaces every keep time."""
    if older_than is not None:
        return [Rule(state, now - older_than, queue) for state in states]
    overrides = {row.name: row for row in NamedQueue.select()}
    rules = []
    for state in states:
        special = {name: getattr(row, f"keep_{state}") for name, row in overrides.items()
                   if getattr(row, f"keep_{state}") is not None}
        if queue is not None:
            keep = special.get(queue, defaults[state])
            if keep > 0:
                rules.append(Rule(state, now - keep, queue))
            continue
        if defaults[state] > 0:
            rules.append(Rule(state, now - defaults[state], None, tuple(sorted(special))))
        rules.extend(Rule(state, now - keep, name) for name, keep in special.items() if keep > 0)
    return rules


def _where(db: pw.Database, rule: Rule) -> tuple[str, list]:
    """The rule as a WHERE clause over the partial index job_finished
    (state, finished_at), with its parameters."""
    p = db.param
    sql = f"WHERE state = {p} AND finished_at < {p}"
    params: list = [rule.state, rule.before]
    if rule.queue is not None:
        sql += f" AND queue = {p}"
        params.append(rule.queue)
    if rule.except_queues:
        sql += f" AND queue NOT IN ({', '.join([p] * len(rule.except_queues))})"
        params.extend(rule.except_queues)
    return sql, params


def _select(db: pw.Database, rule: Rule, limit: int) -> list[tuple[int, str]]:
    """Up to `limit` (seq, id) of jobs the rule prunes, oldest finish first."""
    where, params = _where(db, rule)
    return db.execute_sql(f"SELECT seq, id FROM job {where} ORDER BY finished_at "
                          f"LIMIT {int(limit)}", params).fetchall()


def count(db: pw.Database, rule: Rule) -> int:
    where, params = _where(db, rule)
    return db.execute_sql(f"SELECT COUNT(*) FROM job {where}", params).fetchone()[0]


def _delete_batch(db: pw.Database, rule: Rule, limit: int) -> list[int]:
    """One transaction: the jobs, their events and attempt records. Returns the
    seqs deleted (their log files go after the commit). The DELETE repeats the
    rule, so a job requeued since the SELECT is not touched."""
    with db.atomic():
        picked = _select(db, rule, limit)
        if not picked:
            return []
        p = db.param
        marks = ", ".join([p] * len(picked))
        gone = db.execute_sql(
            f"DELETE FROM job WHERE seq IN ({marks}) AND state = {p} AND finished_at < {p} "
            "RETURNING seq, id, queue",
            [s for s, _ in picked] + [rule.state, rule.before]).fetchall()
        if gone:
            ids = [job_id for _, job_id, _ in gone]
            id_marks = ", ".join([p] * len(ids))
            counts.note_pruned_events(db, ids)
            db.execute_sql(f"DELETE FROM event WHERE job_id IN ({id_marks})", ids)
            db.execute_sql(f"DELETE FROM attempt WHERE job_id IN ({id_marks})", ids)
            db.execute_sql(f"DELETE FROM dependency WHERE job_id IN ({id_marks})", ids)
            counts.count_pruned(db, rule.state, len(gone))
            count_removed(db, rule.state, [queue for _, _, queue in gone])
        return [seq for seq, _, _ in gone]


def prune_now(ctx: Context, *, queue: str | None = None, states: Iterable[str] = FINAL,
              older_than: float | None = None, dry_run: bool = False,
              max_batches: int | None = None) -> tuple[Pruned, bool]:
    """Delete finished jobs past their keep time (or `older_than` seconds),
    with their events, attempts and logs, in short transactions."""
    if queue is not None:
        queues.check_name(queue)
    states = [check_state(st) for st in states]
    if any(st not in FINAL for st in states):
        raise UsageError(f"only finished jobs are pruned ({', '.join(FINAL)})")
    settings = config.get_all()
    defaults = {st: float(settings[f"retention-{st}"]) for st in FINAL}
    now = ctx.clock.now()
    rules = rules_now(defaults, now, queue=queue, states=states, older_than=older_than)
    keep_audit = float(settings["retention-audit"])
    if queue is None and not dry_run and keep_audit > 0:
        with ctx.db.atomic():
            audit.prune(now - keep_audit)
    return prune(ctx.db, rules, ctx.opened.log_dir, dry_run=dry_run,
                 max_batches=max_batches, sleep=ctx.clock.sleep)


def prune(db: pw.Database, rules: list[Rule], log_dir, *, dry_run: bool = False,
          max_batches: int | None = None, sleep: Callable[[float], None] | None = None,
          batch_rows: int = BATCH_ROWS) -> tuple[Pruned, bool]:
    """Apply `rules`; returns what went and whether everything due is gone
    (False: `max_batches` ran out first, call again soon)."""
    result = Pruned()
    if dry_run:
        for rule in rules:
            result.add(rule.state, count(db, rule))
        return result, True
    batches = 0
    for rule in rules:
        while True:
            if max_batches is not None and batches >= max_batches:
                return result, False
            seqs = _delete_batch(db, rule, batch_rows)
            batches += 1
            for seq in seqs:
                logs.remove_log(log_dir, seq)
            result.add(rule.state, len(seqs))
            if len(seqs) < batch_rows:
                break
            if sleep is not None:
                sleep(PAUSE_S)
    return result, True


REMOVED_KEY = "removed."  # + state + "." + queue: finished jobs that left, per queue


def count_removed(db: pw.Database, state: str, queues: Iterable[str]) -> None:
    """Finished jobs of `state` that left the table, one queue name per job:
    pruned here, or deleted and purged by hand (`operator.delete`, `operator.purge_dead`). Inside
    the caller's transaction, so the count and the delete commit together. The
    metrics' finished counters add these to the rows still there; the per-state
    `pruned.` counters (engine/counts.py) stay for the console, which sees deletes as events."""
    per_queue: dict[str, int] = {}
    for queue in queues:
        per_queue[queue] = per_queue.get(queue, 0) + 1
    p = db.param
    for queue, n in sorted(per_queue.items()):
        db.execute_sql(
            f"INSERT INTO meta (key, value) VALUES ({p}, {p}) ON CONFLICT (key) DO UPDATE "
            f"SET value = CAST(CAST(meta.value AS BIGINT) + {p} AS TEXT)",
            (f"{REMOVED_KEY}{state}.{queue}", str(n), n))


def removed_so_far(db: pw.Database) -> dict[tuple[str, str], int]:
    """(queue, state) -> finished jobs removed so far (one row per queue and state)."""
    out: dict[tuple[str, str], int] = {}
    for key, value in db.execute_sql(f"SELECT key, value FROM meta WHERE key LIKE {db.param}",
                                     (REMOVED_KEY + "%",)).fetchall():
        state, _, queue = key[len(REMOVED_KEY):].partition(".")
        if state in STATES and queue:
            out[(queue, state)] = out.get((queue, state), 0) + int(value)
    return out


def take_lease(db: pw.Database, owner: str, now: float, lock_rows: str = "") -> bool:
    """Be the one pruner for the next LEASE_S seconds (or renew it). Every
    supervisor asks; only the holder, or anyone once it lapsed, gets it."""
    Meta.insert(key=LEASE_KEY, value="").on_conflict_ignore().execute()
    with db.atomic():
        p = db.param
        row = db.execute_sql(f"SELECT value FROM meta WHERE key = {p}{lock_rows}",
                             (LEASE_KEY,)).fetchone()
        holder, _, until = (row[0] if row else "").partition(" ")
        if holder and holder != owner and until and float(until) > now:
            return False
        db.execute_sql(f"UPDATE meta SET value = {p} WHERE key = {p}",
                       (f"{owner} {now + LEASE_S}", LEASE_KEY))
        return True


def sweep_logs(db: pw.Database, log_dir, *, limit: int = 5000) -> int:
    """Remove log files of jobs that no longer exist: left by a prune on another
    host (PostgreSQL) or by a crash between a prune's commit and its unlink.
    Read-only on the database; at most `limit` files looked at per call."""
    try:
        names = [entry.name for entry in os.scandir(log_dir)
                 if entry.name.endswith(".log") and entry.name[:-4].isdigit()]
    except FileNotFoundError:
        return 0
    seqs = sorted(int(name[:-4]) for name in names)[:limit]
    removed = 0
    p = db.param
    for start in range(0, len(seqs), 500):
        chunk = seqs[start:start + 500]
        found = {row[0] for row in db.execute_sql(
            f"SELECT seq FROM job WHERE seq IN ({', '.join([p] * len(chunk))})", chunk)}
        for seq in chunk:
            if seq not in found:
                logs.remove_log(log_dir, seq)
                removed += 1
    return removed
