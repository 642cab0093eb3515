"""Version 9: jobs that talk back and a hand on every job. A running job's
progress, message and result; how often it snoozed and what it asked for; how
far its timeout was extended; a pause asked of a running job and when its
processes were stopped; a progress pattern per job and per queue; a queue's
most a job may extend its timeout to. A dead job's failure signature, so the
DLQ can group its jobs by how they failed (issue 29), with the index its
groups are read from. Who did what: the `audit` table, and the person behind
an event (`event.actor`). Held jobs are a state (`held`), not a column. Every
new column is NULL (or 0) for existing rows, but the signature of jobs already
dead: it is computed here, once (`sign_dead_jobs`)."""

from __future__ import annotations

import re

from queuectl_tui.engine import signatures
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
SIGN_BATCH = 1000  # dead jobs read, signed and written at a time
# What outcomes.py adds to a run's error when a retry rule sent it to the DLQ:
# not part of how it failed (the live path signs the error without it).
_NOT_RETRIED = re.compile(r" \(not retried: [^)]*\)$")


def migrate(opened: Opened) -> None:
    add_missing_columns(opened, COLUMNS)
    opened.db.create_tables([models.AuditEntry], safe=True)
    opened.backend.create_extra_indexes()  # job_dead_sig
    sign_dead_jobs(opened)


def sign_dead_jobs(opened: Opened) -> int:
    """Give every dead job without a signature the one it would have had, from
    what its row and its last attempt record kept (its exit, its error, the
    tail of its stderr, how its last run ended). Here rather than lazily at
    the first `dlq groups`: reads then never write, and every face (groups,
    `--group`, the console's filter) sees the same signatures from the start.
    The price is paid once, inside the migration: 12 s for a DLQ of 100,000
    jobs on a busy 2-core machine, most of it the signatures (retention keeps
    dead jobs 30 days by default, so most DLQs are far smaller). Returns how
    many were signed."""
    db, p = opened.db, opened.db.param
    signed, after = 0, 0
    while True:
        rows = db.execute_sql(
            f"SELECT seq, id, exit_code, last_error, stderr_tail FROM job WHERE state = 'dead' "
            f"AND failure_sig IS NULL AND seq > {p} ORDER BY seq LIMIT {SIGN_BATCH}",
            (after,)).fetchall()
        if not rows:
            return signed
        ended = _last_endings(opened, [row[1] for row in rows])
        members: dict[str, list[int]] = {}
        for seq, job_id, exit_code, error, tail in rows:
            sig = signatures.signature(exit_code, ended.get(job_id), tail,
                                       _NOT_RETRIED.sub("", error or ""))
            members.setdefault(sig, []).append(seq)
        for sig, seqs in members.items():  # a few signatures: a few statements
            db.execute_sql(f"UPDATE job SET failure_sig = {p} WHERE seq IN "
                           f"({', '.join([p] * len(seqs))})", (sig, *seqs))
        signed += len(rows)
        after = rows[-1][0]


def _last_endings(opened: Opened, job_ids: list[str]) -> dict[str, str | None]:
    """How each job's last recorded run ended (jobs older than attempt records
    have none: their exit code and error say it)."""
    p = opened.db.param
    found: dict[str, str | None] = {}
    for job_id, reason in opened.db.execute_sql(
            f"SELECT job_id, reason FROM attempt WHERE job_id IN "
            f"({', '.join([p] * len(job_ids))}) ORDER BY job_id, number, seq", job_ids):
        found[job_id] = reason  # the last one read is the last run
    return found
