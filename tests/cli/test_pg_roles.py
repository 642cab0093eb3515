"""Issue 31, say who can do what: the PostgreSQL roles docs/security.md gives,
run against a real server (tests/pg_roles.py makes them from the page). A
viewer reads everything and changes nothing (exit 5, one line, the database
unchanged); an enqueuer enqueues in every form and can change nothing else;
the owner runs the pool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cli_env, wait_for
from tests.pg_roles import dump, refused, roles, run  # noqa: F401 - roles is a fixture

pytestmark = pytest.mark.postgres


def test_the_viewer_reads_everything_and_changes_nothing(roles):
    owner, viewer = roles["worker"], roles["viewer"]
    assert run(owner, "enqueue", "--id", "done1", "echo hi").returncode == 0
    assert run(owner, "enqueue", "--id", "dead1", "exit 3").returncode == 0
    assert run(owner, "enqueue", "--id", "wait1", "--delay", "1h", "true").returncode == 0
    pool = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "worker", "start"],
                            env=cli_env(owner), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: json.loads(run(viewer, "show", "dead1", "--json").stdout)["state"]
                 == "dead", 60, message="the pool to run the jobs")
    finally:
        pool.terminate()
        pool.wait(30)
    for args in (("status",), ("list",), ("show", "done1"), ("logs", "done1"), ("history",),
                 ("audit",), ("metrics",), ("dlq", "list"), ("queue", "list"),
                 ("schedule", "list"), ("worker", "list"), ("config", "get")):
        result = run(viewer, *args)
        assert result.returncode == 0, (args, result.stderr)
    assert "hi" in run(viewer, "logs", "done1").stdout
    before = dump(owner)
    for args in (("enqueue", "true"), ("cancel", "wait1"), ("dlq", "retry", "dead1"),
                 ("requeue", "done1"), ("delete", "done1"), ("dlq", "purge", "--yes"),
                 ("config", "set", "backoff-base", "3"), ("queue", "pause", "default"),
                 ("queue", "limit", "default", "2"), ("prune", "--older-than", "0"),
                 ("schedule", "add", "s", "--cron", "@daily", "true")):
        result = run(viewer, *args)
        assert refused(result), (args, result.returncode, result.stderr)
    assert dump(owner) == before


def test_the_enqueuer_enqueues_in_every_form_and_nothing_else(roles, tmp_path: Path):
    owner, enqueuer = roles["worker"], roles["enqueuer"]
    assert run(enqueuer, "enqueue", "--id", "first", "true").returncode == 0
    for args in (("--after", "first", "true"), ("--unique-key", "k1", "true"),
                 ("--unique-key", "k1", "--if-absent", "true"),
                 ("--queue", "brand-new", "--cpus", "1", "--mem", "10M", "true"),
                 ("--key", "customer-1", "true")):
        result = run(enqueuer, "enqueue", *args)
        assert result.returncode == 0, (args, result.stderr)
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"command": "true"}) + "\n" for _ in range(21_000)))
    assert run(enqueuer, "enqueue", "--file", str(big)).returncode == 0
    named = tmp_path / "named.jsonl"
    named.write_text("".join(json.dumps({"id": f"n{i}", "command": "true"}) + "\n"
                             for i in range(21_000)))
    result = run(enqueuer, "enqueue", "--file", str(named))
    assert result.returncode == 0, result.stderr
    status = json.loads(run(enqueuer, "status", "--json").stdout)
    assert status["counts"]["pending"] + status["counts"]["blocked"] == 42_005
    before = dump(owner)
    for args in (("cancel", "first"), ("delete", "first"), ("config", "set", "max-retries", "1"),
                 ("queue", "pause", "default"), ("prune", "--older-than", "0"),
                 ("schedule", "add", "s", "--cron", "@daily", "true")):
        result = run(enqueuer, *args)
        assert refused(result), (args, result.returncode, result.stderr)
    assert dump(owner) == before
    # The owner's pool runs what the enqueuer queued.
    assert run(owner, "queue", "pause", "default").returncode == 0  # the big files wait
    assert run(enqueuer, "enqueue", "--queue", "fast", "--id", "ran", "echo ran"
               ).returncode == 0
    pool = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "worker", "start",
                             "--queues", "fast"], env=cli_env(owner),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(lambda: json.loads(run(enqueuer, "show", "ran", "--json").stdout)["state"]
                 == "completed", 60, message="the owner's pool to run the enqueuer's job")
    finally:
        pool.terminate()
        pool.wait(30)
