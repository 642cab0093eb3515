"""Issue 31, who did what: every operator action from the command line is in
the audit trail with its person, and in the history of the jobs it touched; the
pool's own work is not; the trail is pruned with the rest. SQLite and PostgreSQL."""

from __future__ import annotations

import getpass
import json
import time
from datetime import datetime

from tests.helpers import cli_json, run_cli, wait_for
from tests.workers.test_pool_lifecycle import enqueue, state_of, wait_state


def events(db, job_id: str) -> list[dict]:
    """A job's history, newest first (JSON Lines)."""
    result = run_cli(db, "history", "--job", job_id, "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def actions(db) -> list[dict]:
    """The audit trail, oldest first."""
    result = run_cli(db, "audit", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in reversed(result.stdout.splitlines())]


def test_every_cli_action_is_recorded_with_its_person(db):
    a = enqueue(db, "true", "--id", "a1")
    b = enqueue(db, "true", "--id", "b1", "--delay", "1h")
    assert run_cli(db, "cancel", b).returncode == 0
    assert run_cli(db, "requeue", b).returncode == 0
    assert run_cli(db, "delete", b).returncode == 0
    assert run_cli(db, "config", "set", "backoff-base", "3").returncode == 0
    assert run_cli(db, "queue", "pause", "default").returncode == 0
    assert run_cli(db, "queue", "resume", "default").returncode == 0
    assert run_cli(db, "queue", "limit", "default", "4").returncode == 0
    assert run_cli(db, "queue", "rate", "default", "10/1m").returncode == 0
    assert run_cli(db, "schedule", "add", "nightly", "--cron", "0 3 * * *", "true"
                   ).returncode == 0
    assert run_cli(db, "schedule", "pause", "nightly").returncode == 0
    assert run_cli(db, "schedule", "run", "nightly").returncode == 0
    assert run_cli(db, "schedule", "remove", "nightly").returncode == 0
    assert run_cli(db, "prune", "--older-than", "1d").returncode == 0
    assert run_cli(db, "worker", "stop").returncode == 0
    trail = actions(db)
    assert [(r["action"], r["target"], r["job_ids"][:1]) for r in trail] == [
        ("enqueue", None, [a]), ("enqueue", None, [b]), ("cancel", None, [b]),
        ("requeue", None, [b]), ("delete", None, [b]),
        ("config set", "backoff-base", []), ("queue pause", "default", []),
        ("queue resume", "default", []), ("queue set", "default", []),
        ("queue set", "default", []), ("schedule add", "nightly", []),
        ("schedule pause", "nightly", []), ("schedule run", "nightly", trail[12]["job_ids"]),
        ("schedule remove", "nightly", []), ("prune", None, []), ("worker stop", None, [])]
    user = getpass.getuser()
    assert {(r["user"], r["via"], r["token"]) for r in trail} == {(user, "cli", None)}
    assert trail[5]["detail"] == 3 and trail[8]["detail"] == {"max_running": 4}
    # The job's own history names who moved it, and `show` lists what was done to it.
    assert events(db, a)[-1]["by"] == f"{user}@{trail[0]['host']} (cli)"
    assert [x["action"] for x in state_of(db, a)["actions"]] == ["enqueue"]
    since = run_cli(db, "audit", "--since", "1h", "--job", b, "--json")
    assert [json.loads(line)["action"] for line in since.stdout.splitlines()] == \
        ["delete", "requeue", "cancel", "enqueue"]


def test_the_pool_s_own_work_is_not_an_operator_action(db, pools):
    """Claims, outcomes, retries and the DLQ are the pool's: in history, not the trail."""
    job = enqueue(db, "exit 3", "--max-retries", "1")
    pools(1)
    wait_state(db, job, "dead", timeout=30)
    assert [r["action"] for r in actions(db)] == ["enqueue"]
    assert all(e["by"] is None for e in events(db, job) if e["from"] is not None)
    assert cli_json(db, "dlq", "retry", job)
    assert [r["action"] for r in actions(db)] == ["enqueue", "dlq retry"]


def test_a_web_console_s_token_names_the_person(db):
    """`queuectl web` tells each page's console which named token opened it."""
    result = run_cli_as(db, "web:ops", "enqueue", "true", "--id", "w1")
    assert result.returncode == 0, result.stderr
    row = actions(db)[-1]
    assert (row["via"], row["token"], row["who"]) == ("web", "ops", "web:ops")
    by = events(db, "w1")[-1]["by"]
    assert by.startswith("web:ops (")


def test_retention_prunes_the_trail(db):
    enqueue(db, "true")
    assert run_cli(db, "config", "set", "retention-audit", "1").returncode == 0
    newest = max(datetime.fromisoformat(r["at"].replace("Z", "+00:00")).timestamp()
                 for r in actions(db))
    wait_for(lambda: time.time() > newest + 1.5, timeout=10,
             message="every action to be older than retention-audit")
    pruned = run_cli(db, "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert [r["action"] for r in actions(db)] == ["prune"]  # its own, just recorded
    bad = run_cli(db, "audit", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "--since takes a duration" in bad.stderr


def run_cli_as(db, actor: str, *args: str):
    import subprocess
    import sys
    from tests.helpers import cli_env
    return subprocess.run([sys.executable, "-m", "queuectl_tui", *args], capture_output=True,
                          text=True, env=cli_env(db, QUEUECTL_ACTOR=actor), timeout=60)
