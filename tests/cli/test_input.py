"""Input that never breaks the queue, and the CLI contract scripts rely on (issue 9,
issue 14 #10-#13, #16, #17). Real CLI processes, real workers, real files."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest

from tests.helpers import cli_json, run_cli
from tests.workers.test_pool_lifecycle import enqueue, wait_state


def test_shell_lines_are_never_mistaken_for_json(db, pools, tmp_path):
    test_ = enqueue(db, "[ -f /etc/passwd ] && echo yes")
    group = enqueue(db, "{ echo a; echo b; }")
    dashed = run_cli(db, "enqueue", "--json", "--", "-x-not-a-flag")  # starts with "-"
    argv = run_cli(db, "enqueue", "--json", "--", "printf", "%s|", "two words", "$HOME")
    assert dashed.returncode == 0 and argv.returncode == 0, dashed.stderr + argv.stderr
    assert json.loads(argv.stdout)["command"] == "printf '%s|' 'two words' '$HOME'"
    pools(1)
    assert wait_state(db, test_, "completed")["stdout_tail"] == "yes\n"
    assert wait_state(db, group, "completed")["stdout_tail"] == "a\nb\n"
    assert wait_state(db, json.loads(argv.stdout)["id"], "completed")["stdout_tail"] == \
        "two words|$HOME|"
    ran = wait_state(db, json.loads(dashed.stdout)["id"], "failed", "dead")
    assert "-x-not-a-flag: not found" in ran["last_error"], "sh took the command for an option"


def test_jobs_run_where_they_were_enqueued_with_their_environment(db, pools, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    from tests.helpers import cli_env
    import subprocess
    import sys
    made = subprocess.run([sys.executable, "-m", "queuectl_tui", "enqueue", "pwd; echo $GREETING",
                           "--env", "GREETING=hello there", "--json"], cwd=here,
                          env=cli_env(db), capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)
    assert job["cwd"] == str(here) and job["env"] == {"GREETING": "hello there"}
    elsewhere = enqueue(db, "pwd", "--cwd", "/")
    gone_dir = tmp_path / "gone"
    gone_dir.mkdir()
    doomed = enqueue(db, "true", "--cwd", str(gone_dir), "--max-retries", "0")
    gone_dir.rmdir()
    pools(1)
    assert wait_state(db, job["id"], "completed")["stdout_tail"] == f"{here}\nhello there\n"
    assert wait_state(db, elsewhere, "completed")["stdout_tail"] == "/\n"
    failed = wait_state(db, doomed, "dead")
    assert str(gone_dir) in failed["last_error"] and "No such file" in failed["last_error"]


def test_the_assignments_job_object_is_accepted(db):
    obj = {"id": "unique-job-id", "command": "echo 'Hello World'", "state": "pending",
           "attempts": 0, "max_retries": 3, "created_at": "2025-11-04T10:30:00Z",
           "updated_at": "2025-11-04T10:30:00Z"}
    job = cli_json(db, "enqueue", json.dumps(obj))
    assert (job["id"], job["state"], job["attempts"], job["max_retries"]) == \
        ("unique-job-id", "pending", 0, 3)
    assert job["created_at"] == "2025-11-04T10:30:00.000Z" == job["updated_at"]
    again = run_cli(db, "enqueue", json.dumps(obj))
    assert again.returncode == 4 and "already exists" in again.stderr


def test_json_lines_split_on_newlines_only(db_path, tmp_path):
    """Issue 14 #12: a raw U+2028 (or U+0085) inside a command split the line."""
    lines = tmp_path / "jobs.jsonl"
    lines.write_text('{"command": "echo a\u2028b", "id": "sep"}\r\n'
                     '{"command": "echo c\u0085d", "id": "nel"}\n\n'
                     '{"command": "oops"\n', encoding="utf-8")
    bad = run_cli(db_path, "enqueue", "--file", str(lines))
    assert bad.returncode == 2 and "line 4" in bad.stderr, bad.stderr
    lines.write_text(lines.read_text(encoding="utf-8").replace('{"command": "oops"\n', ""),
                     encoding="utf-8")
    assert run_cli(db_path, "enqueue", "--file", str(lines)).returncode == 0
    assert cli_json(db_path, "show", "sep")["command"] == "echo a\u2028b"
    assert cli_json(db_path, "show", "nel")["command"] == "echo c\u0085d"


def test_a_stored_out_of_range_time_does_not_break_listings(db_path):
    """Issue 14 #10: a run_at of 1e18 stored by the old release broke `list`, `show`
    and `dlq list` for the whole queue."""
    enqueue(db_path, "true", "--id", "ok")
    enqueue(db_path, "true", "--id", "far")
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE job SET run_at = 1e18 WHERE id = 'far'")
    listed = run_cli(db_path, "list")
    assert listed.returncode == 0 and "far" in listed.stdout, listed.stderr
    assert {j["id"] for j in cli_json(db_path, "list")} == {"ok", "far"}
    assert run_cli(db_path, "show", "far").returncode == 0


def test_read_commands_refuse_a_missing_database_and_create_nothing(tmp_path):
    missing = tmp_path / "typo.db"
    for args in (["status"], ["list"], ["show", "x"], ["logs", "x"], ["history"],
                 ["wait", "x"], ["dlq", "list"], ["worker", "list"]):
        result = run_cli(missing, *args)
        assert result.returncode == 5 and "no database at" in result.stderr, (args, result)
        assert "creates it" in result.stderr
        assert not missing.exists(), f"{args} created the database"
    for args in (["config", "get"], ["config", "show"], ["config", "list"]):
        # issue 25: the defaults, said to be that on stderr, instead of exit 5
        result = run_cli(missing, *args)
        assert result.returncode == 0 and "max-retries" in result.stdout, (args, result)
        assert "no database at" in result.stderr and "default" in result.stderr
        assert not missing.exists(), f"{args} created the database"
    assert run_cli(missing, "enqueue", "true").returncode == 0  # a write may create it


def test_a_foreign_sqlite_file_is_refused_and_left_alone(tmp_path):
    """Issue 14 #13: `status --db other.db` added queuectl's tables to it."""
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE foo (x)")
    before = other.read_bytes()
    for args in (["status"], ["enqueue", "true"]):
        result = run_cli(other, *args)
        assert result.returncode == 5 and "not a queuectl database" in result.stderr, result
    assert other.read_bytes() == before
    empty = tmp_path / "empty.db"
    empty.touch()
    assert run_cli(empty, "status").returncode == 5
    assert run_cli(empty, "enqueue", "true").returncode == 0  # writing commands create


def test_schema_version_that_is_not_a_number_is_a_database_error(db_path):
    """Issue 14 #11: meta.schema_version = 'x3' was an "internal error"."""
    enqueue(db_path, "true")
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value = 'x3' WHERE key = 'schema_version'")
    result = run_cli(db_path, "status")
    assert result.returncode == 5 and "not a number" in result.stderr, result.stderr


def test_escape_sequences_reach_no_terminal_but_json_stays_exact(db_path):
    """Issue 14 #16: `list` and `show` printed raw escape sequences."""
    nasty = "printf '\\033]0;PWNED\\007'; echo '\x1b[2Jcleared'"
    job = enqueue(db_path, nasty)
    for args in (["list"], ["show", job]):
        out = run_cli(db_path, *args).stdout
        assert "\x1b" not in out and "\\x1b" in out, out
    assert cli_json(db_path, "show", job)["command"] == nasty


def test_status_counts_active_workers_and_hides_long_gone_ones(db, pools):
    """Issue 9: status says how many workers are active; issue 14 #17: gone
    workers from yesterday no longer pile up in `status`."""
    enqueue(db, "true")
    quiet = run_cli(db, "status")
    assert "no workers active" in quiet.stdout
    pools(2).wait_ready()
    status = cli_json(db, "status")
    assert status["active_workers"] == 2 and isinstance(status["active_workers"], int)
    assert "2 workers active" in run_cli(db, "status").stdout
    from queuectl_tui.engine.storage.models import Worker
    from queuectl_tui.engine.storage.opening import open_database
    opened = open_database(db)
    try:
        long_ago = time.time() - 5 * 3600
        for n in range(5):
            Worker.create(id=f"old-{n}", host="h", pid=1, state="gone", started_at=long_ago,
                          heartbeat_at=long_ago)
    finally:
        opened.close()
    status = cli_json(db, "status")
    assert not [w for w in status["workers"] if w["id"].startswith("old-")]
    assert status["hidden_gone_workers"] == 5
    assert "5 worker(s) gone longer ago" in run_cli(db, "status").stdout
    assert len([w for w in cli_json(db, "worker", "list", "--all")
                if w["id"].startswith("old-")]) == 5


def test_list_takes_several_states_and_config_shows_everything(db, pools):
    failing = enqueue(db, "false", "--max-retries", "5")
    waiting = enqueue(db, "true", "--delay", "1h")
    pools(1)
    failed = wait_state(db, failing, "failed")
    assert failed["next_retry_at"] is not None and failed["next_retry_at"] == failed["run_at"]
    both = {j["id"] for j in cli_json(db, "list", "--state", "pending,failed")}
    assert both == {failing, waiting}
    assert cli_json(db, "show", waiting)["next_retry_at"] is None
    every = cli_json(db, "config", "list")
    assert cli_json(db, "config", "show") == every == cli_json(db, "config", "get")
    assert "max-retries" in run_cli(db, "config", "show").stdout
