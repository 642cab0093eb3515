"""Version 9: jobs that talk back and a hand on every job. A running job's
progress, message and result; how often it snoozed and what it asked for; how
far its timeout was extended; a pause asked of a running job and when its
processes were stopped; a progress pattern per job and per queue; a queue's
most a job may extend its timeout to. A dead job's failure signature, so the
DLQ can group its jobs by how they failed (issue 29). Who did what: the
`audit` table, and the person behind an event (`event.actor`). Held jobs are a state (`held`), not a
column. Every new column is NULL (or 0) for existing rows."""

from __future__ import annotations

from queuectl_tui.engine.storage import models
from queuectl_tui.engine.storage.migrations.alter import add_missing_columns
from queuectl_tui.engine.storage.opened import Opened

COLUMNS = (
    ("job", "progress_done", "{real}"), ("job", "progress_total", "{real}"),
    ("job", "progress_message", "TEXT"), ("job", "progress_at", "{real}"),
    ("job", "progress_regex", "TEXT"), ("job", "result", "TEXT"),
    ("job", "snoozes", "INTEGER NOT NULL DEFAULT 0"), ("job", "snooze_for", "{real}"),
    ("job", "extended_by", "{real}"),
    ("job", "pause_requested", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ("job", "paused_at", "{real}"), ("job", "paused_for", "{real}"),
    ("job", "failure_sig", "VARCHAR(255)"),
    ("staged_job", "progress_regex", "TEXT"),
    ("queue", "progress_regex", "TEXT"), ("queue", "max_timeout", "{real}"),
    ("event", "actor", "VARCHAR(255)"),
)


def migrate(opened: Opened) -> None:
    add_missing_columns(opened, COLUMNS)
    opened.db.create_tables([models.AuditEntry], safe=True)
