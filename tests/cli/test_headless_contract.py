"""The headless contract, through the real command: JSON only on stdout, one-line
errors on stderr, meaningful exit codes, no tracebacks, and bad input changes nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from tests.helpers import cli_env, cli_json, run_cli


def assert_clean_error(result: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert text in lines[0], lines[0]


def snapshot(db) -> list:
    """Every row of every table: everything a bad command could have changed."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [(t, conn.execute(f"SELECT * FROM {t}").fetchall()) for t in sorted(tables)]


@pytest.fixture
def seeded(db_path):
    assert run_cli(db_path, "enqueue", "echo one", "--id", "one").returncode == 0
    return db_path


@pytest.mark.parametrize("args, code, text", [
    (["enqueue", '{"command": "x"'], 2, "malformed JSON"),
    (["enqueue", '{"id": "x", "command": "true"'], 2, "malformed JSON"),
    (["enqueue", '{}'], 2, "missing field 'command'"),
    (["enqueue", '{"id": "x"}'], 2, "missing field 'command'"),
    (["enqueue", '{"command": ""}'], 2, "must not be empty"),
    (["enqueue", '{"command": "x", "max_retries": -1}'], 2, "max_retries"),
    (["enqueue", '{"command": "x", "max_retries": 2.5}'], 2, "whole number"),
    (["enqueue", '{"command": "x", "max_retries": "3"}'], 2, "whole number"),
    (["enqueue", '{"command": "x", "timeout": NaN}'], 2, "NaN is not valid JSON"),
    (["enqueue", '{"command": "x", "command": "y"}'], 2, "appears twice"),
    (["enqueue", '{"command": "x", "id": "one"}'], 4, "already exists"),
    (["enqueue", "echo", "--id", "one"], 4, "already exists"),
    # Issue 14 #10, #11: times and numbers out of range are usage errors, stored nowhere.
    (["enqueue", '{"command": "true", "run_at": 1e18, "id": "far"}'], 2, "between 1970"),
    (["enqueue", '{"command": "true", "run_at": 1e300}'], 2, "between 1970"),
    (["enqueue", "true", "--run-at", "0001-01-01T00:00:00-01:00"], 2, "between 1970"),
    (["enqueue", '{"command": "x", "priority": 1' + "0" * 5000 + '}'], 2, "malformed JSON"),
    (["list", "--limit", "99999999999999999999999"], 2, "at most"),
    (["history", "--limit", "99999999999999999999999"], 2, "at most"),
    (["dlq", "list", "--limit", "99999999999999999999999"], 2, "at most"),
    (["config", "set", "max-retries", "1_000"], 2, "plain digits"),
    (["config", "set", "max-retries", "\u0663"], 2, "plain digits"),
    (["worker", "start", "--count", "65"], 2, "at most 64"),
    (["worker", "start", "--count", "99999999999999999999"], 2, "at most 64"),
    (["enqueue", '{"command": "x", "state": "completed"}'], 2, "must be \"pending\""),
    (["enqueue", '{"command": "x", "attempts": 2}'], 2, "attempts must be 0"),
    (["enqueue", "x", "--env", "1BAD=x"], 2, "not valid"),
    (["enqueue", "x", "--env", "NOEQUALS"], 2, "KEY=VALUE"),
    (["enqueue", "echo", "--max-retries", "-2"], 2, "max_retries"),
    (["enqueue", "echo", "--max-retries", "x"], 2, "invalid whole number"),
    (["enqueue", "echo", "--delay", "soon"], 2, "invalid duration"),
    (["enqueue", "echo", "--run-at", "yesterday"], 2, "ISO 8601"),
    (["enqueue"], 2, "give a command"),
    (["list", "--state", "bogus"], 2, "unknown state 'bogus'"),
    (["list", "--limit", "0"], 2, "at least 1"),
    (["show", "nope"], 3, "no job with id 'nope'"),
    (["show", "bad id!"], 2, "invalid job id"),
    (["dlq", "retry", "one"], 4, "not dead"),
    (["dlq", "retry", "nope"], 3, "no job"),
    (["dlq", "retry"], 2, "give job ids or --all"),
    (["worker", "start", "--count", "0"], 2, "at least 1"),
    (["worker", "start", "--count", "-3"], 2, "at least 1"),
    (["config", "get", "colour"], 2, "unknown config key"),
    (["config", "set", "max-retries", "-1"], 2, "between 0 and 1000"),
    (["config", "set", "backoff-base", "fast"], 2, "must be a number"),
    (["cancel", "nope"], 3, "no job"),
    (["delete", "nope"], 3, "no job"),
    (["history", "--job", "nope"], 3, "no job"),
    (["frobnicate"], 2, "invalid choice"),
])
def test_bad_input_is_one_line_and_changes_nothing(seeded, args, code, text):
    before = snapshot(seeded)
    assert_clean_error(run_cli(seeded, *args), code, text)
    assert snapshot(seeded) == before


def test_enqueue_forms_and_json_purity(db):
    plain = run_cli(db, "enqueue", "echo hi", "--id", "p1", "--priority", "4",
                    "--delay", "5m", "--timeout", "30s", "--max-retries", "0", "--json")
    # stderr says only that no worker runs (issue 25, item 16); stdout is the JSON alone
    assert plain.returncode == 0 and plain.stderr.startswith("queuectl: no worker is running")
    assert plain.stderr.count("\n") == 1
    job = json.loads(plain.stdout)
    assert (job["id"], job["priority"], job["timeout"], job["max_retries"]) == ("p1", 4, 30.0, 0)
    spec = {"id": "j1", "command": "echo 'a b' | wc -c", "max_retries": 2,
            "run_at": "2030-01-01T00:00:00Z"}
    assert run_cli(db, "enqueue", json.dumps(spec)).stdout == "enqueued j1\n"
    jobs = cli_json(db, "list")
    assert [j["id"] for j in jobs] == ["p1", "j1"]
    assert jobs[1]["command"] == spec["command"] and jobs[1]["run_at"] == "2030-01-01T00:00:00.000Z"
    assert jobs[0]["created_at"].endswith("Z")


def test_enqueue_file_is_all_or_nothing_with_line_number(db, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps({"command": f"echo {i}"}) for i in range(250)) + "\n\n")
    assert cli_json(db, "enqueue", "--file", str(good))["enqueued"] == 250
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"command": "echo a"}\n{"command": "echo b"}\n{"command": 3}\n')
    assert_clean_error(run_cli(db, "enqueue", "--file", str(bad)), 2, "line 3")
    piped = run_cli(db, "enqueue", "--file", "-", "--json",
                    input='{"command": "echo x", "id": "s1"}\n{"command": "echo y"}\n')
    assert json.loads(piped.stdout)["enqueued"] == 2
    assert len(cli_json(db, "list")) == 252
    assert_clean_error(run_cli(db, "enqueue", "--file", str(tmp_path / "missing")),
                       2, "cannot read")


def test_list_is_never_capped_unless_asked(db):
    lines = "".join(json.dumps({"command": "true"}) + "\n" for _ in range(1200))
    run_cli(db, "enqueue", "--file", "-", input=lines)
    assert len(cli_json(db, "list")) == 1200
    assert len(cli_json(db, "list", "--state", "pending", "--limit", "7")) == 7
    assert cli_json(db, "list", "--state", "dead") == []


def test_status_json_has_every_state_and_workers(db):
    assert run_cli(db, "enqueue", "echo one").returncode == 0
    status = cli_json(db, "status")
    assert status["counts"] == {"pending": 1, "processing": 0, "completed": 0,
                                "failed": 0, "dead": 0, "cancelled": 0, "blocked": 0,
                                    "held": 0}
    assert status["workers"] == []


def test_config_round_trip_and_persistence(db):
    assert run_cli(db, "config", "set", "max_retries", "5").stdout == "5\n"
    assert cli_json(db, "config", "get", "max-retries") == {"key": "max-retries", "value": 5}
    assert cli_json(db, "config", "list")["max-retries"] == 5
    job = cli_json(db, "enqueue", "true")
    assert job["max_retries"] == 5


def test_cancel_delete_and_purge(db):
    for name in ("a", "b", "c"):
        run_cli(db, "enqueue", "true", "--id", name)
    assert run_cli(db, "cancel", "a").returncode == 0
    assert [j["id"] for j in cli_json(db, "list", "--state", "cancelled")] == ["a"]
    assert cli_json(db, "dlq", "list") == [], "a cancelled job is not in the DLQ"
    assert cli_json(db, "delete", "b", "a") == {"deleted": ["b", "a"]}
    assert cli_json(db, "dlq", "purge", "--yes") == {"purged": []}
    assert [j["id"] for j in cli_json(db, "list")] == ["c"]
    history = run_cli(db, "history", "--json").stdout.splitlines()
    assert all(json.loads(line)["at"].endswith("Z") for line in history)


def test_not_a_database_is_refused_and_left_alone(tmp_path):
    fake = tmp_path / "notes.txt"
    fake.write_text("dear diary\n")
    assert_clean_error(run_cli(fake, "status"), 5, "not a queuectl database")
    assert fake.read_text() == "dear diary\n"
    assert_clean_error(run_cli(tmp_path, "status"), 5, "is a directory")


def run_as_a_plain_reader(db, *args: str) -> subprocess.CompletedProcess:
    """The CLI, reading files by their mode even when the suite runs as root (CI
    does): root's two capabilities that bypass file modes are dropped from the
    child's bounding set before it starts, so its root is a plain owner."""
    def drop_dac_override() -> None:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return subprocess.run([sys.executable, "-m", "queuectl_tui", *args], capture_output=True,
                          text=True, env=cli_env(db), timeout=60,
                          preexec_fn=drop_dac_override if os.geteuid() == 0 else None)


def test_unreadable_database(db_path):
    run_cli(db_path, "enqueue", "--id", "kept", "true")
    db_path.chmod(0)
    before = db_path.read_bytes()
    assert_clean_error(run_as_a_plain_reader(db_path, "status"), 5, "cannot read")
    assert_clean_error(run_as_a_plain_reader(db_path, "enqueue", "true"), 5, "cannot read")
    assert db_path.read_bytes() == before and stat.S_IMODE(db_path.stat().st_mode) == 0
    db_path.chmod(0o600)
    assert [j["id"] for j in cli_json(db_path, "list")] == ["kept"]


def test_new_database_is_owner_only(tmp_path):
    db = tmp_path / "sub" / "q.db"
    run_cli(db, "enqueue", "echo hi")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for extra in (tmp_path / "sub" / "q.db-wal", tmp_path / "sub" / "q.db-shm"):
        if extra.exists():
            assert stat.S_IMODE(extra.stat().st_mode) == 0o600


def test_newer_schema_is_refused(db_path):
    run_cli(db_path, "enqueue", "true")
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    assert_clean_error(run_cli(db_path, "status"), 5, "newer than this queuectl")


def test_headless_commands_do_not_import_textual(db_path):
    run_cli(db_path, "enqueue", "true")
    code = ("import sys; from queuectl_tui.cli import main; "
            "rc = main(['status', '--json']); "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'textual'], 'textual imported'; "
            "sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], env=cli_env(db_path),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_python_dash_m_and_help(db_path):
    result = run_cli(db_path, "--help")
    assert result.returncode == 0 and "enqueue" in result.stdout


def test_postgres_connection_errors_are_clear_and_hide_the_password(tmp_path):
    url = "postgresql://someone:s3cret@127.0.0.1:1/nowhere"
    result = run_cli(url, "status")
    assert_clean_error(result, 5, "cannot connect to postgresql://someone:***@127.0.0.1:1/nowhere")
    assert "s3cret" not in result.stderr
