"""The PostgreSQL roles docs/security.md gives, made on a real server for a
test: the GRANT blocks are read from the page itself, so the page and what was
tested cannot drift apart (tests/cli/test_pg_roles.py, the console's too)."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys

import pytest

from tests.helpers import ROOT, cli_env

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
