"""Version 8: flow control. Keys, resource needs and the pool and devices of a
running job; rate and per-key limits on queues; the starts a rate counts; what
each run used; the pool and capacity of each worker. Every new column is NULL
(or false) for existing rows: none of it applies to them."""

from __future__ import annotations

from queuectl_tui.engine.storage import models
from queuectl_tui.engine.storage.migrations.alter import add_missing_columns
from queuectl_tui.engine.storage.opened import Opened

_NEEDS = (("key", "VARCHAR(255)"), ("cpus", "{real}"), ("mem", "BIGINT"), ("gpus", "INTEGER"))
COLUMNS = (
    *(("job", name, kind) for name, kind in _NEEDS),
    *(("staged_job", name, kind) for name, kind in _NEEDS),
    ("job", "run_pool", "VARCHAR(255)"), ("job", "devices", "VARCHAR(255)"),
    ("queue", "rate_limit", "INTEGER"), ("queue", "rate_period", "{real}"),
    ("queue", "rate_per_key", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ("queue", "key_limit", "INTEGER"),
    ("queue", "needs", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ("queue", "max_cpus", "{real}"), ("queue", "max_mem", "BIGINT"),
    ("queue", "max_gpus", "INTEGER"),
    ("attempt", "peak_mem", "BIGINT"), ("attempt", "cpu_s", "{real}"),
    ("attempt", "mem_limit_by", "VARCHAR(16)"), ("attempt", "devices", "VARCHAR(255)"),
    ("worker", "pool", "VARCHAR(255)"), ("worker", "capacity", "TEXT"),
)


def migrate(opened: Opened) -> None:
    add_missing_columns(opened, COLUMNS)
    opened.db.create_tables([models.Start], safe=True)
