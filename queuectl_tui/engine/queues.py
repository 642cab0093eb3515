"""Named queues: which a worker may claim from now, and their settings.

Every job belongs to one queue (`default` unless it names another). A queue has
a row in the `queue` table as soon as a job or a setting names it; the row holds
its pause flag, its concurrency limit and its retention overrides.

The claim asks `claimable()` first, inside the claim's own transaction: paused
queues and queues already running their limit are left out, so the claim
statement itself only ever looks at queues it may take from. On SQLite the
transaction holds the write lock, so the count it reads cannot change before the
claim commits. PostgreSQL runs claims side by side: there, a claim that may take
from a limited queue first takes a transaction-level advisory lock, so limited
claims happen one at a time and each sees the previous one committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import peewee as pw

from queuectl_tui.engine import rates
from queuectl_tui.engine.rates import Rate
from queuectl_tui.engine.storage.models import Job, NamedQueue
from queuectl_tui.engine.states import FINAL, State
from queuectl_tui.errors import NotFound, UsageError

if TYPE_CHECKING:
    from queuectl_tui.engine.context import Context

DEFAULT = "default"
MAX_LIMIT = 100_000


def check_name(value: Any) -> str:
    """A queue name as a job names it (engine/jobspec.py's rule), or UsageError.
    jobspec is imported here, not above: `status` and `list` never need it."""
    from queuectl_tui.engine.jobspec import check_queue
    return check_queue(value)


def parse_names(text: str) -> list[str]:
    """'a,b' -> ['a', 'b'] in the given order (earlier names are served first)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError("--queues needs at least one queue name, e.g. --queues mail,default")
    seen: list[str] = []
    for name in names:
        if check_name(name) not in seen:
            seen.append(name)
    return seen


def parse_limit(text: str) -> int | None:
    """'4' -> 4; '0' or 'none' -> None (no limit)."""
    value = text.strip().lower()
    if value in ("none", "0", "off", "unlimited"):
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 7:
        raise UsageError(f"invalid limit {text!r}: a whole number of jobs "
                         f"(1-{MAX_LIMIT}), or 0 / none for no limit")
    limit = int(value)
    if limit > MAX_LIMIT:
        raise UsageError(f"limit {limit} is too large (at most {MAX_LIMIT})")
    return limit


def ensure(names: Iterable[str], now: float,
           needing: dict[str, tuple[float, int, int]] | None = None) -> None:
    """Make sure these queues have rows (inside the caller's transaction);
    `needing`: queues that now hold jobs stating resources, with the most any of
    them needs (engine/flow.py checks capacity only for those)."""
    rows = [{"name": name, "created_at": now} for name in sorted(set(names))]
    if rows:
        NamedQueue.insert_many(rows).on_conflict_ignore().execute()
    for name, (cpus, mem, gpus) in sorted((needing or {}).items()):
        p = NamedQueue._meta.database.param
        NamedQueue._meta.database.execute_sql(
            f"UPDATE queue SET needs = TRUE, "
            f"max_cpus = CASE WHEN max_cpus IS NULL OR max_cpus < {p} THEN {p} ELSE max_cpus END, "
            f"max_mem = CASE WHEN max_mem IS NULL OR max_mem < {p} THEN {p} ELSE max_mem END, "
            f"max_gpus = CASE WHEN max_gpus IS NULL OR max_gpus < {p} THEN {p} ELSE max_gpus END "
            f"WHERE name = {p}", (cpus, cpus, mem, mem, gpus, gpus, name))


def get(name: str) -> NamedQueue:
    row = NamedQueue.get_or_none(NamedQueue.name == check_name(name))
    if row is None:
        raise NotFound(f"no queue named {name!r}; `queuectl queue list` shows them")
    return row


def update(name: str, now: float, **fields: Any) -> None:
    """Set a queue's settings, creating the queue if it is new (a setting names it)."""
    ensure([check_name(name)], now)
    NamedQueue.update(**fields).where(NamedQueue.name == name).execute()


@dataclass(frozen=True)
class Rules:
    """What the queue table says now: paused queues, limits of the others, and
    their flow-control rules (engine/flow.py)."""

    names: tuple[str, ...]
    paused: frozenset[str]
    limits: dict[str, int]
    rates: dict[str, Rate] = field(default_factory=dict)
    key_limits: dict[str, int] = field(default_factory=dict)
    needs: dict[str, tuple[float, int, int]] = field(default_factory=dict)  # most stated

    def gated(self, names: Iterable[str]) -> bool:
        """Whether a claim from these queues must count under the claims' lock."""
        return any(name in self.limits or name in self.rates or name in self.key_limits
                   or name in self.needs for name in names)


def read_rules(db: pw.Database, lock: str = "") -> Rules:
    """`lock`: a FROM item that takes the claims' lock with this read
    (PostgreSQL's shared claims lock: engine/claim.py)."""
    rows = db.execute_sql(
        "SELECT name, paused, max_running, rate_limit, rate_period, rate_per_key, key_limit, "
        f"needs, max_cpus, max_mem, max_gpus FROM queue{lock} ORDER BY name").fetchall()
    open_rows = [r for r in rows if not r[1]]
    return Rules(names=tuple(r[0] for r in rows),
                 paused=frozenset(r[0] for r in rows if r[1]),
                 limits={r[0]: int(r[2]) for r in open_rows if r[2]},
                 rates={r[0]: Rate(int(r[3]), float(r[4]), bool(r[5]))
                        for r in open_rows if r[3] and r[4]},
                 key_limits={r[0]: int(r[6]) for r in open_rows if r[6]},
                 needs={r[0]: (float(r[8] or 0.0), int(r[9] or 0), int(r[10] or 0))
                        for r in open_rows if r[7]})


def running_counts(db: pw.Database, names: Iterable[str]) -> dict[str, int]:
    """Running jobs per queue (only a few rows are ever `processing`)."""
    names = list(names)
    if not names:
        return {}
    p = db.param
    rows = db.execute_sql(
        f"SELECT queue, COUNT(*) FROM job WHERE state = '{State.PROCESSING.value}' "
        f"AND queue IN ({', '.join([p] * len(names))}) GROUP BY queue", names).fetchall()
    return {name: count for name, count in rows}


def claimable(db: pw.Database, serving: list[str] | None, *,
              rules: Rules | None = None) -> list[str]:
    """The queues a worker serving `serving` (None: all) may take a job from now,
    in the order it should try them: not paused, not at their limit (rates and
    keys are flow.py's). A claim has taken the claims' lock before (claim.py)."""
    rules = rules or read_rules(db)
    wanted = list(rules.names) if serving is None else serving
    open_ = [name for name in wanted if name not in rules.paused]
    limited = [name for name in open_ if name in rules.limits]
    if limited:
        counts = running_counts(db, limited)
        full = {name for name in limited if counts.get(name, 0) >= rules.limits[name]}
        open_ = [name for name in open_ if name not in full]
    return open_


def summary(db: pw.Database, now: float, window: float | None = 60.0, *,
            only: str | None = None,
            counts: dict[str, dict[str, int]] | None = None) -> list[dict[str, Any]]:
    """Every queue (or `only` one) with its counts per state, running / limit,
    paused, and jobs finished in the last `window` seconds (from the event log,
    by its time index; None: not counted, for `status`, which must stay quick).
    `counts` (queue -> state -> n) saves the count when the caller has it."""
    if counts is None:
        counts = counts_by_queue(only)
    recent = {} if window is None else _finished_since(db, now - window)
    rows = NamedQueue.select().order_by(NamedQueue.name)
    if only is not None:
        rows = rows.where(NamedQueue.name == only)
    out = []
    for row in rows:
        per_state = counts.get(row.name, {})
        rate = None
        if row.rate_limit and row.rate_period:
            rate = rates.window(db, row.name, Rate(row.rate_limit, row.rate_period,
                                                   bool(row.rate_per_key)), now)
        out.append({
            "name": row.name,
            "paused": bool(row.paused),
            "limit": row.max_running,
            "per_key_limit": row.key_limit,
            "rate": rate,
            "running": per_state.get(State.PROCESSING, 0),
            "counts": per_state,
            "total": sum(per_state.values()),
            "finished_last_minute": recent.get(row.name, 0),
            "retention": {state.value: getattr(row, f"keep_{state.value}") for state in FINAL},
            "finish_hook": row.finish_hook,
            "max_timeout": row.max_timeout,
            "progress_regex": row.progress_regex,
        })
    return out


def counts_by_queue(only: str | None = None) -> dict[str, dict[str, int]]:
    """Jobs per queue and state (queue -> state -> n): a scan of every job, so
    the console runs it off its keys' path."""
    query = Job.select(Job.queue, Job.state, pw.fn.COUNT(pw.SQL("*")))
    if only is not None:
        query = query.where(Job.queue == only)
    counts: dict[str, dict[str, int]] = {}
    for queue, state, n in query.group_by(Job.queue, Job.state).tuples():
        if state != State.STAGED:  # a bulk enqueue still being written
            counts.setdefault(queue, {})[state] = n
    return counts


_FINAL_SQL = ", ".join(f"'{state.value}'" for state in FINAL)


def _finished_since(db: pw.Database, since: float) -> dict[str, int]:
    """Jobs that reached a final state since `since`, per queue. Events outlive
    nothing here: a pruned job's events go with it, and a minute is far shorter
    than any retention worth having."""
    p = db.param
    rows = db.execute_sql(
        "SELECT j.queue, COUNT(*) FROM event e JOIN job j ON j.id = e.job_id "
        f"WHERE e.at >= {p} AND e.to_state IN ({_FINAL_SQL}) "
        "GROUP BY j.queue", (since,)).fetchall()
    return {queue: n for queue, n in rows}


# ---------------------------------------------------------------- the facade's calls

def listing(ctx: Context, recent: bool = True, counts: dict[str, int] | None = None,
            by_queue: dict[str, dict[str, int]] | None = None) -> list[dict[str, Any]]:
    """Every queue with its counts, limit, pause flag and (`recent`) how many
    jobs it finished in the last minute. `counts` (this database's counts per
    state) stands for the queues' when only `default` exists: no second count.
    `by_queue` (queue -> state -> n, counted earlier) saves the count too."""
    if counts is not None and not has_named(ctx.db):
        by_queue = {DEFAULT: {st: n for st, n in counts.items() if n}}
    return summary(ctx.db, ctx.clock.now(), 60.0 if recent else None, counts=by_queue)


def has_named(db: pw.Database) -> bool:
    """More than `default`, or a paused or limited queue: worth a line each."""
    rules = read_rules(db)
    return len(rules.names) > 1 or bool(rules.paused or rules.limits or rules.rates
                                        or rules.key_limits)


def one(ctx: Context, name: str) -> dict[str, Any]:
    get(name)  # NotFound for a queue nothing has named
    return summary(ctx.db, ctx.clock.now(), only=name)[0]


def set_rules(ctx: Context, name: str, **fields: Any) -> dict[str, Any]:
    """Pause, resume, limit, set retention or max-timeout; a queue named here for the first
    time exists from now on. Resuming or raising a limit wakes idle workers."""
    check_name(name)
    with ctx.db.atomic():
        update(name, ctx.clock.now(), **fields)
        ctx.backend.notify()
    return one(ctx, name)
