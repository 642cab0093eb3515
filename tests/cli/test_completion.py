"""Shell completion: the scripts for bash, zsh and fish, and what a TAB offers,
asked the way the shells ask (argcomplete's protocol) and through real bash."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from queuectl_tui.cli.commands import build_parser
from tests.helpers import cli_env, cli_json, run_cli


def complete(db: str, line: str, cwd: Path | None = None) -> list[str]:
    """What argcomplete answers for `line` (cursor at its end): the shell's side
    of the protocol, with the answers on a file instead of fd 8."""
    out = Path(cwd or Path(db).parent) / "completions.out"
    env = {**cli_env(db), "_ARGCOMPLETE": "1", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n",
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    result = subprocess.run([sys.executable, "-m", "queuectl_tui"], env=env,
                            capture_output=True, text=True, timeout=60, cwd=cwd or None)
    assert result.returncode == 0, result.stderr
    words = out.read_text().split("\n") if out.exists() else []
    out.unlink(missing_ok=True)
    return sorted(w.strip() for w in words if w.strip())


@pytest.fixture
def jobs_db(db_path: Path) -> str:
    """alpha1, alpha2 waiting; alpha3 cancelled (finished); beta dead."""
    db = str(db_path)
    for job_id in ("alpha1", "alpha2", "alpha3"):
        assert run_cli(db, "enqueue", "--id", job_id, "--delay", "1h", "true").returncode == 0
    assert run_cli(db, "cancel", "alpha3").returncode == 0
    assert run_cli(db, "enqueue", "--id", "beta", "--max-retries", "0", "exit 1").returncode == 0
    from tests.helpers import WorkerPool, wait_for
    pool = WorkerPool(db, 1)
    try:
        wait_for(lambda: cli_json(db, "show", "beta")["state"] == "dead", 30,
                 message="beta to die")
    finally:
        pool.close()
    return db


@pytest.mark.parametrize("shell, marker", [
    ("bash", "complete -o nospace -o default -o bashdefault -F _python_argcomplete queuectl"),
    ("zsh", "compdef _python_argcomplete queuectl"),
    ("fish", "complete --command queuectl"),
])
def test_each_shell_gets_its_script(tmp_path, shell, marker):
    result = run_cli(str(tmp_path / "none.db"), "completion", shell)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert marker in result.stdout
    assert not (tmp_path / "none.db").exists()


def test_an_unknown_shell_is_a_usage_error(tmp_path):
    result = run_cli(str(tmp_path / "none.db"), "completion", "tcsh")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "invalid choice" in result.stderr


def test_commands_and_every_flag_of_every_command(tmp_path):
    db = str(tmp_path / "none.db")
    parser = build_parser()
    commands = _subcommands(parser)
    assert complete(db, "queuectl ") == sorted(commands)
    leaves = _leaves(parser)
    for path in leaves:  # every command, every flag
        expected = sorted(opt for opt in leaves[path] if opt.startswith("--"))
        assert complete(db, "queuectl " + " ".join(path) + " --") == expected, path
    assert complete(db, "queuectl dlq ") == ["delete", "groups", "list", "purge", "retry"]
    assert complete(db, "queuectl worker start --log-format ") == ["json", "text"]
    assert complete(db, "queuectl enqueue --priority ") == []  # a number: no file names


def test_job_ids_by_prefix_and_by_what_the_command_accepts(jobs_db):
    assert complete(jobs_db, "queuectl cancel al") == ["alpha1", "alpha2"]  # not cancelled 3
    assert complete(jobs_db, "queuectl show al") == ["alpha1", "alpha2", "alpha3"]
    assert complete(jobs_db, "queuectl cancel alpha1 al") == ["alpha1", "alpha2"]
    assert complete(jobs_db, "queuectl dlq retry ") == ["beta"]
    assert complete(jobs_db, "queuectl requeue ") == ["alpha3", "beta"]
    assert complete(jobs_db, "queuectl history --job b") == ["beta"]
    assert complete(jobs_db, f"queuectl --db {jobs_db} logs alpha") == [
        "alpha1", "alpha2", "alpha3"]


def test_config_keys_and_state_lists(tmp_path):
    db = str(tmp_path / "none.db")
    keys = complete(db, "queuectl config set ")
    assert "job-timeout" in keys and "backoff-base" in keys
    assert complete(db, "queuectl config get lea") == ["lease-seconds"]
    assert complete(db, "queuectl list --state pending,c") == ["pending,cancelled",
                                                               "pending,completed"]
    assert complete(db, "queuectl requeue --all-state ") == ["cancelled", "completed", "dead"]


def test_no_database_offers_nothing_and_creates_nothing(tmp_path):
    db = tmp_path / "none.db"
    assert complete(str(db), "queuectl cancel ") == []
    assert not db.exists()


def test_queue_names(jobs_db):
    assert run_cli(jobs_db, "enqueue", "--queue", "mail", "true").returncode == 0
    assert "mail" in complete(jobs_db, "queuectl list --queue ")
    assert complete(jobs_db, "queuectl worker start --queues default,m") == ["default,mail"]


def test_schedule_names(db_path):
    """Offered to a `schedule` command's NAME (and any --schedule), from the
    database; the commands themselves may not have landed yet."""
    from queuectl_tui.cli.commands.completion import completer_for
    from queuectl_tui.engine.storage import models
    from queuectl_tui.engine.storage.opening import open_database
    if not hasattr(models, "Schedule"):
        pytest.skip("this schema has no schedules")
    opened = open_database(str(db_path))
    try:
        for name in ("nightly", "hourly", "noon"):
            models.Schedule.create(name=name, cron="0 * * * *", command="true",
                                   created_at=0.0, updated_at=0.0)
    finally:
        opened.close()
    name = argparse.ArgumentParser().add_argument("name")
    completer = completer_for(("schedule", "remove"), name)
    assert completer is not None
    assert completer("n", parsed_args=argparse.Namespace(db=str(db_path))) == ["nightly", "noon"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_real_bash_completes_commands_and_job_ids(jobs_db, tmp_path):
    """Source the printed script in bash and call its completion function the
    way bash does on TAB (COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "queuectl"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m queuectl_tui "$@"\n')
    script.chmod(0o755)
    env = {**cli_env(jobs_db), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}

    def tab(*words: str) -> list[str]:
        line = " ".join(words)
        program = (
            'source <(queuectl completion bash)\n'
            f'COMP_WORDS=({" ".join(repr(w) for w in words)}); '
            f'COMP_CWORD={len(words) - 1}; COMP_LINE={line!r}; COMP_POINT={len(line)}\n'
            '_python_argcomplete queuectl\n'
            'printf "%s\\n" "${COMPREPLY[@]}"\n')
        result = subprocess.run(["bash", "-c", program], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return sorted(w.strip() for w in result.stdout.splitlines() if w.strip())

    assert tab("queuectl", "") == sorted(_subcommands(build_parser()))
    assert tab("queuectl", "can") == ["cancel"]
    assert tab("queuectl", "cancel", "alp") == ["alpha1", "alpha2"]


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
            ) -> dict[tuple[str, ...], list[str]]:
    """Every command path and its option strings."""
    found: dict[tuple[str, ...], list[str]] = {}
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        found[path] = [o for a in parser._actions for o in a.option_strings]
    for action in subs:
        for name, sub in action.choices.items():
            found.update(_leaves(sub, path + (name,)))
    return found


def test_commands_that_are_not_completing_never_load_argcomplete(db_path):
    """The start-up promise behind choosing argcomplete (DECISIONS.md)."""
    assert run_cli(str(db_path), "enqueue", "true").returncode == 0
    probe = ("import sys\nfrom queuectl_tui.cli import main\ncode = main(['status'])\n"
             "print('argcomplete' in sys.modules, code)")
    result = subprocess.run([sys.executable, "-c", probe], env=cli_env(str(db_path)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False 0"


def test_bash_keeps_the_at_of_a_schedules_job_ids(db_path):
    """Issue 25: `tick@2026…` came back as `tick2026…` in bash. Bash replaces a
    word from its `@` on (a readline special prefix), so the answer must keep
    it; argcomplete cut after it."""
    db = str(db_path)
    for job_id in ("tick@20261207T1434", "tick@20261207T1435"):
        assert run_cli(db, "enqueue", "--id", job_id, "--delay", "1h", "true").returncode == 0
    out = db_path.parent / "completions.out"
    line = "queuectl show tick@20261207T143"
    env = {**cli_env(db), "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_IFS": "\n", "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
           "_ARGCOMPLETE_SHELL": "bash", "_ARGCOMPLETE_COMP_WORDBREAKS": " \t\n\"'@><=;|&(:"}
    result = subprocess.run([sys.executable, "-m", "queuectl_tui"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(out.read_text().split()) == ["@20261207T1434", "@20261207T1435"]
