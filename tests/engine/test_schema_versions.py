"""Mixed versions on one database, through real pools (issue 25 #10): a worker
that meets a schema newer than its own stops claiming, says why and exits
non-zero; a migration while live workers of an older queuectl run is refused.

"Newer" and "older" are simulated: a newer queuectl is this code run with a
higher SCHEMA_VERSION and one more (empty) migration; a worker of the previous
release is a live worker row that records no schema version."""

from __future__ import annotations

import subprocess
import sys

from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.models import Event, Job
from queuectl_tui.engine.storage.opening import open_database
from queuectl_tui.engine.storage.schema import SCHEMA_VERSION
from tests.helpers import cli_env, run_cli, wait_for

NEWER = SCHEMA_VERSION + 1
NEWER_CLI = ("import sys; from queuectl_tui.engine.storage import migrations, schema; "
             f"schema.SCHEMA_VERSION = {NEWER}; "
             f"migrations.MIGRATIONS[{SCHEMA_VERSION}] = lambda opened: None; "
             "from queuectl_tui.cli import main; sys.exit(main(sys.argv[1:]))")


def newer_cli(db: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NEWER_CLI, *args], capture_output=True,
                          text=True, env=cli_env(db), timeout=60)


def stored_version(opened) -> int:
    row = opened.db.execute_sql("SELECT value FROM meta WHERE key = 'schema_version'")
    return int(row.fetchone()[0])


def test_a_worker_meeting_a_newer_schema_stops_claiming_and_exits_non_zero(db, pools):
    pool = pools(2)
    pool.wait_ready()
    opened = open_database(db)
    try:
        opened.db.execute_sql("UPDATE meta SET value = %s WHERE key = 'schema_version'"
                              .replace("%s", opened.db.param), (str(NEWER),))
        Queue(opened).enqueue(JobSpec(command="true", id="after-migration"))
        code = pool.wait(30)
        log = pool.proc.stderr.read()
        assert code != 0, log
        assert f"migrated to schema v{NEWER}" in log, log
        assert "replaced by worker" not in log, log  # not restarted only to be refused
        job = Job.get(Job.id == "after-migration")
        assert job.state == "pending", log
        assert not Event.select().where(Event.job_id == "after-migration",
                                        Event.to_state == "processing").exists(), log
    finally:
        opened.close()


def test_a_migration_under_live_workers_of_an_older_queuectl_is_refused(db, pools):
    pool = pools(1)
    [worker] = pool.wait_ready()
    refused = newer_cli(db, "status")
    assert refused.returncode == 5, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "live worker(s) of an older queuectl" in refused.stderr
    assert f"pid {worker['pid']}" in refused.stderr and "nothing was changed" in refused.stderr
    opened = open_database(db)
    try:
        assert stored_version(opened) == SCHEMA_VERSION
        assert run_cli(db, "enqueue", "--id", "still-served", "true").returncode == 0
        wait_for(lambda: Job.get(Job.id == "still-served").state == "completed",
                 message="the older pool to keep working")
        pool.close()  # a graceful stop: its workers are no longer live
        migrated = newer_cli(db, "status")
        assert migrated.returncode == 0, migrated.stderr
        assert stored_version(opened) == NEWER
    finally:
        opened.close()


def test_the_previous_release_s_live_workers_hold_off_this_release_s_migration(db, pools):
    """The upgrade this change itself brings: a pool of the previous release
    (its worker rows carry no schema version) on a database one version back."""
    pool = pools(1)
    pool.wait_ready()
    opened = open_database(db)
    try:
        p = opened.db.param
        opened.db.execute_sql("UPDATE worker SET schema_version = NULL")
        opened.db.execute_sql(f"UPDATE meta SET value = {p} WHERE key = 'schema_version'",
                              (str(SCHEMA_VERSION - 1),))
        refused = run_cli(db, "status")
        assert refused.returncode == 5, refused.stderr
        assert "live worker(s) of an older queuectl" in refused.stderr
        assert stored_version(opened) == SCHEMA_VERSION - 1
        pool.close()
        assert run_cli(db, "status").returncode == 0
        assert stored_version(opened) == SCHEMA_VERSION
    finally:
        opened.close()
