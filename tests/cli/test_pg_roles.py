"""Issue 31, say who can do what: the PostgreSQL roles docs/security.md gives,
run against a real server. The GRANTs are read from the page itself, so the
page and what was tested cannot drift apart. A viewer reads everything and
changes nothing (exit 5, one line, the database unchanged); an enqueuer
enqueues in every form and can change nothing else; the owner runs the pool."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli_env, wait_for

pytestmark = pytest.mark.postgres

DOC = ROOT / "docs" / "security.md"


def blocks() -> dict[str, str]:
    """The page's SQL blocks, by their `-- role: NAME` first line."""
    found = re.findall(r"```sql\n-- role: (\w+)\n(.*?)```", DOC.read_text(), re.S)
    return {name: body for name, body in found}


@pytest.fixture
def roles(pg_database):
    """The setup block run as a superuser with unique names (roles are
    cluster-wide), then the grants as the owner; yields a URL per role."""
    import psycopg2
    tag = f"qct{secrets.token_hex(3)}"
    rename = lambda sql: sql.replace("queuectl_", f"{tag}_").replace(  # noqa: E731
        "DATABASE queuectl ", f"DATABASE {tag} ")
    admin = psycopg2.connect(pg_database)
    admin.autocommit = True
    base = pg_database.rsplit("/", 1)[0]
    urls = {role: f"{_with_user(base, f'{tag}_{role}')}/{tag}"
            for role in ("worker", "enqueuer", "viewer")}
    try:
        with admin.cursor() as cur:
            for statement in _statements(rename(blocks()["setup"])):
                cur.execute(statement)
        assert run(urls["worker"], "config", "set", "max-retries", "0").returncode == 0
        owner = psycopg2.connect(urls["worker"])
        owner.autocommit = True
        with owner.cursor() as cur:
            for name in ("viewer", "enqueuer"):
                for statement in _statements(rename(blocks()[name])):
                    cur.execute(statement)
        owner.close()
        yield urls
    finally:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s", (tag,))
            cur.execute(f'DROP DATABASE IF EXISTS "{tag}"')
            for role in ("worker", "enqueuer", "viewer"):
                cur.execute(f'DROP ROLE IF EXISTS "{tag}_{role}"')
        admin.close()


def _with_user(base: str, user: str) -> str:
    """postgresql://postgres@host:port -> postgresql://USER@host:port"""
    scheme, rest = base.split("://", 1)
    return f"{scheme}://{user}@{rest.split('@', 1)[-1]}"


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in "\n".join(
        line for line in sql.splitlines() if not line.strip().startswith("--")
    ).split(";") if s.strip()]


def run(url: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "queuectl_tui", *args], input=input,
                          capture_output=True, text=True, env=cli_env(url), timeout=120)


def dump(url: str) -> dict[str, list]:
    """Every row of every table but the audit trail's (reads add none): what a
    refused write must leave as it was."""
    import psycopg2
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "ORDER BY tablename")
        tables = [t for (t,) in cur.fetchall()]
        out = {}
        for table in tables:
            cur.execute(f'SELECT * FROM "{table}" ORDER BY 1')
            out[table] = cur.fetchall()
    conn.close()
    return out


def refused(result: subprocess.CompletedProcess) -> bool:
    lines = result.stderr.strip().splitlines()
    return (result.returncode == 5 and len(lines) == 1 and "refused the change" in lines[0]
            and "Traceback" not in result.stderr)


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
