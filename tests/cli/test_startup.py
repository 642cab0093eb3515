"""Start-up of the headless commands (issue 13), without changing what they do.

`queuectl` builds only the parser of the command it runs: what it accepts,
refuses and prints must be what the whole parser gives (compared in-process,
argv by argv). And a command on a SQLite file imports neither Textual nor the
PostgreSQL driver (nor ssl, which the driver brings).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from queuectl_tui.cli.commands import COMMANDS, build_parser, command_in
from queuectl_tui.cli.parser import Parser
from tests.helpers import cli_env, run_cli

SAMPLES = [
    ["status"], ["status", "--json"], ["--db", "/x.db", "status"], ["--db=/x.db", "list"],
    ["--d", "status", "list", "--limit", "20"], ["--db", "list", "status"],
    ["list", "--state", "dead,failed", "--limit", "5", "--json", "--db", "/y"],
    ["enqueue", "echo hi", "--id", "a", "--max-retries", "2", "--priority", "3",
     "--run-at", "2026-01-01T00:00:00Z", "--delay", "5m", "--timeout", "1h", "--cwd", "/",
     "--env", "A=1", "--env", "B=2", "--json"],
    ["enqueue", "--", "-x", "--id", "y"], ["enqueue", "--file", "-"],
    ["worker", "start", "--count", "2", "--detach", "--log", "/tmp/l"],
    ["worker", "stop", "--now", "--grace", "3s", "--wait", "--timeout", "1m"],
    ["worker", "list", "--all"], ["show", "j1"], ["logs", "j1", "-f", "--attempt", "2"],
    ["wait", "a", "b", "--timeout", "5m"], ["history", "--job", "a", "--limit", "3"],
    ["dlq", "list"], ["dlq", "retry", "--all"], ["dlq", "purge", "--yes"],
    ["config", "get"], ["config", "set", "max-retries", "3"], ["config", "list"],
    ["config", "show"], ["cancel", "a", "--grace", "2s", "--wait"],
    ["requeue", "--all-state", "dead"], ["delete", "a", "b"], ["demo", "--workers", "3"],
    ["tui"], [], ["queue", "list", "--json"], ["queue", "pause", "a", "b"], ["queue", "-h"],
    ["prune", "--state", "completed", "--older-than", "7d", "--dry-run"],
    ["service", "unit", "--user", "--count", "2", "--log-format", "json"],
    ["service", "unit", "--log-format", "xml"], ["completion", "fish"], ["completion", "csh"],
    ["enqueue", "x", "--queue", "q1"], ["list", "--queue", "q1"],
    # refused: the same one-line error and exit code 2
    ["frobnicate"], ["status", "--bogus"], ["list", "--limit", "0"], ["worker"],
    ["worker", "start", "--count", "65"], ["dlq", "nope"], ["show"], ["wait"],
    ["enqueue", "x", "--delay", "soon"], ["--db"], ["--db", "/x"], ["-", "status"],
    # help and version: printed the same, exit 0
    ["--help"], ["-h", "status"], ["status", "--help"], ["worker", "--help"],
    ["worker", "stop", "-h"], ["enqueue", "-h"], ["--version"], ["--", "status"],
]


def outcome(parser: argparse.ArgumentParser, argv: list[str], capsys) -> tuple:
    try:
        result: object = vars(parser.parse_args(argv))
    except SystemExit as exc:
        result = ("exit", exc.code)
    out, err = capsys.readouterr()
    return result, out, err


@pytest.mark.parametrize("argv", SAMPLES, ids=" ".join)
def test_the_one_command_parser_behaves_like_the_whole_one(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # the same help layout for both
    whole = outcome(build_parser(), argv, capsys)
    assert outcome(build_parser(command_in(argv)), argv, capsys) == whole


def test_the_command_is_known_only_when_certain():
    assert command_in(["status"]) == "status"
    assert command_in(["--db", "status", "list"]) == "list"
    assert command_in(["--db=x", "--d", "y", "worker", "start"]) == "worker"
    for unsure in ([], ["-h", "status"], ["--version"], ["--", "status"], ["frob"],
                   ["--dbx", "status"], ["--db"], ["-", "list"]):
        assert command_in(unsure) is None, unsure
    assert all(command_in([name]) == name for name in COMMANDS)


@pytest.mark.parametrize("argv", [
    ["status"], ["list", "--limit", "20"], ["show", "j1"], ["history"], ["dlq", "list"],
    ["config", "get"], ["worker", "list"], ["logs", "j1"], ["enqueue", "true"],
])
def test_a_command_on_sqlite_imports_no_driver_and_no_textual(db_path, argv):
    assert run_cli(db_path, "enqueue", "true", "--id", "j1").returncode == 0
    code = ("import sys; from queuectl_tui.cli import main; rc = main(sys.argv[1:]); "
            "loaded = {m.split('.')[0] for m in sys.modules if sys.modules[m] is not None}; "
            "assert not loaded & {'textual', 'psycopg2', 'psycopg', 'ssl'}, loaded; "
            "sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, *argv], env=cli_env(db_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("argv", [["status"], ["list", "--limit", "20"]])
def test_status_and_list_import_only_what_they_use(db_path, argv):
    """Each costs milliseconds of every start: argparse's help formatter would
    import shutil (with zlib, bz2 and lzma) for help nobody asked for, and
    reading never needs what enqueueing, finishing or pruning does."""
    assert run_cli(db_path, "enqueue", "true").returncode == 0
    unused = ["shutil", "random", "queuectl_tui.engine.jobspec", "queuectl_tui.engine.hooks",
              "queuectl_tui.engine.retention"]
    code = ("import sys; from queuectl_tui.cli import main; rc = main(sys.argv[1:]); "
            f"loaded = [m for m in {unused!r} if m in sys.modules]; "
            "assert not loaded, loaded; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, *argv], env=cli_env(db_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("columns", ["100", "45", "0", "wide", None])
def test_help_is_as_wide_as_argparse_would_make_it(columns, monkeypatch):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    text = "a long description of the command, long enough to be wrapped " * 4
    ours = Parser(prog="queuectl", description=text)
    stock = Parser(prog="queuectl", description=text, formatter_class=argparse.HelpFormatter)
    for parser in (ours, stock):
        parser.add_argument("--name", metavar="N", help=text)
    assert ours.format_help() == stock.format_help()
