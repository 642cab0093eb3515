"""Small reads for the tools around queuectl: a service manager, a shell.

`queuectl service unit` needs the longest a graceful stop can take (the
longest job timeout); tab completion needs job ids by prefix and the names
things go by. Plain reads: no write lock, nothing created.
"""

from __future__ import annotations

from typing import Iterable

import peewee as pw

from queuectl_tui.engine import config
from queuectl_tui.engine.storage import models
from queuectl_tui.engine.storage.models import Job
from queuectl_tui.engine.states import UNFINISHED

MAX_COMPLETIONS = 200  # a shell shows no more usefully; keeps a TAB fast at 1M jobs


def timeouts() -> tuple[float | None, float | None]:
    """(`job-timeout` setting, the largest timeout of an unfinished job); None
    where there is none (0 and null both mean "no limit")."""
    setting = float(config.get("job-timeout")) or None
    largest = (Job.select(pw.fn.MAX(Job.timeout))
               .where(Job.state.in_(UNFINISHED), Job.timeout > 0)  # a stop may wait for them
               .scalar())
    return setting, (float(largest) if largest else None)


def job_ids(db: pw.Database, prefix: str = "", states: Iterable[str] | None = None,
            limit: int = MAX_COMPLETIONS) -> list[str]:
    """Job ids starting with `prefix`, in id order.

    On SQLite a range over the unique index on id (its LIKE would not use the
    index, and `_` is a wildcard there); PostgreSQL orders text by the
    database's collation, where such a range is not a prefix, so it compares
    the first characters instead.
    """
    query = Job.select(Job.id)
    if prefix and isinstance(db, pw.SqliteDatabase):
        query = query.where(Job.id >= prefix, Job.id < prefix + "\U0010ffff")
    elif prefix:
        query = query.where(pw.fn.SUBSTR(Job.id, 1, len(prefix)) == prefix)
    if states is not None:
        query = query.where(Job.state.in_(list(states)))
    return [row[0] for row in query.order_by(Job.id).limit(limit).tuples()]


def config_keys() -> list[str]:
    """Every settable key (the names `config get/set` take)."""
    return list(config.KEYS)


def schedule_names(prefix: str = "", limit: int = MAX_COMPLETIONS) -> list[str]:
    """Names of recurring jobs, where this schema has them (issue 11)."""
    schedule = getattr(models, "Schedule", None)
    if schedule is None:
        return []
    return [row[0] for row in schedule.select(schedule.name)
            .where(pw.fn.SUBSTR(schedule.name, 1, len(prefix)) == prefix)
            .order_by(schedule.name).limit(limit).tuples()]
