"""`queuectl service unit`: the printed systemd unit, checked by systemd's own
verifier where it is installed, parsed always, and its command run for real."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cli_env, cli_json, run_cli, wait_for


def unit_fields(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit's text as {section: {key: [values]}}; any other line fails."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"not a unit line: {raw!r}"
        key, value = line.split("=", 1)
        current.setdefault(key, []).append(value)
    return sections


def unquote(value: str) -> list[str]:
    """Words as systemd reads them from what the unit writes (double quotes with
    backslash escapes, %% and $$ for literal % and $)."""
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(value)]


def environment(service: dict[str, list[str]]) -> dict[str, str]:
    pairs = [word.split("=", 1) for value in service.get("Environment", [])
             for word in unquote(value)]
    return dict(pairs)


def service_unit(db: str, *args: str) -> tuple[dict, str, str]:
    result = run_cli(db, "service", "unit", *args)
    assert result.returncode == 0, result.stderr
    return unit_fields(result.stdout), result.stdout, result.stderr


def verify(text: str, tmp_path: Path, user: bool) -> None:
    """systemd-analyze verify, if this machine has it: no complaint about our unit."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return  # parsed by the caller; nothing more to ask
    unit = tmp_path / "queuectl-worker.service"
    unit.write_text(text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    result = subprocess.run([tool, *(["--user"] if user else []), "verify", str(unit)],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if "queuectl-worker" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


@pytest.mark.parametrize("user", [True, False])
def test_unit_runs_the_pool_on_this_database_and_stops_gracefully(db_path, tmp_path, user):
    db = str(db_path)
    assert run_cli(db, "config", "set", "job-timeout", "300").returncode == 0
    assert run_cli(db, "enqueue", "--id", "long", "--timeout", "2h", "true").returncode == 0
    assert run_cli(db, "enqueue", "--id", "done", "--timeout", "9h", "true").returncode == 0
    assert run_cli(db, "delete", "done").returncode == 0  # gone: its timeout no longer counts
    args = ["--count", "3", "--log-format", "json", *(["--user"] if user else [])]
    unit, text, err = service_unit(db, *args)
    verify(text, tmp_path, user)
    service = unit["Service"]
    argv = unquote(service["ExecStart"][0])
    assert argv[-6:] == ["worker", "start", "--count", "3", "--log-format", "json"]
    assert Path(argv[0]).is_absolute() and os.access(argv[0], os.X_OK)
    assert environment(service)["QUEUECTL_DB"] == str(Path(db).absolute())
    assert service["Restart"] == ["on-failure"] and service["KillSignal"] == ["SIGTERM"]
    assert service["KillMode"] == ["mixed"]  # the jobs are not signalled by systemd
    assert int(service["TimeoutStopSec"][0]) > 7200 and "2h" in err
    assert service["StandardError"] == ["journal"]
    assert unit["Install"]["WantedBy"] == ["default.target" if user else "multi-user.target"]
    if not user:  # never root: the invoking user, or a dedicated one when root prints it
        assert service["User"] == ([os.environ.get("USER") or os.getlogin()]
                                   if os.geteuid() != 0 else ["queuectl"])
    else:
        assert "User" not in service
    # The command as systemd would run it: a real pool on this database, which a
    # SIGTERM (KillSignal) stops after its running job, exit 0.
    env = {**cli_env("unused"), **environment(service)}  # the unit's QUEUECTL_DB wins
    pool = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert run_cli(db, "enqueue", "--id", "svc", "sleep 0.5").returncode == 0
        wait_for(lambda: cli_json(db, "show", "svc")["state"] == "processing", 30,
                 message="the service's pool to take the job")
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(30) == 0
        assert cli_json(db, "show", "svc")["state"] == "completed"  # finished, not killed
    finally:
        if pool.poll() is None:
            os.killpg(pool.pid, signal.SIGKILL)
        pool.wait(10)
        pool.stderr.close()


def test_no_timeout_anywhere_is_said_and_a_default_chosen(tmp_path):
    db = str(tmp_path / "not-yet.db")  # the service's pool will create it
    unit, _, err = service_unit(db, "--user")
    assert unit["Service"]["TimeoutStopSec"] == ["600"]
    assert "no job timeout is set" in err and "--stop-timeout" in err
    assert not Path(db).exists(), "service unit created the database"


def test_relative_path_becomes_absolute_and_queues_pass_through(tmp_path):
    work = tmp_path / "dir with space%"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "queuectl_tui",
         "--db", "q.db", "service", "unit", "--queues", "fast,slow", "--quiet",
         "--stop-timeout", "90s"],
        cwd=work, env=cli_env("ignored"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    service = unit_fields(result.stdout)["Service"]
    assert environment(service)["QUEUECTL_DB"] == str(work / "q.db")
    assert "%%" in result.stdout  # a literal % escaped from systemd's specifiers
    argv = unquote(service["ExecStart"][0])
    assert argv[argv.index("--queues") + 1] == "fast,slow" and "--quiet" in argv
    assert service["TimeoutStopSec"] == ["90"]
    verify(result.stdout, tmp_path, user=False)


def test_a_password_stays_out_of_the_unit(tmp_path):
    url = "postgresql://queue:s3cret@db.internal:5432/jobs"
    result = run_cli(url, "service", "unit", "--user", "--stop-timeout", "5m")
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    service = unit_fields(result.stdout)["Service"]
    assert "QUEUECTL_DB" not in environment(service)
    assert service["EnvironmentFile"] == ["%h/.config/queuectl/queuectl-worker.env"]
    assert "QUEUECTL_DB=postgresql://queue:***@db.internal:5432/jobs" in result.stderr
    verify(result.stdout, tmp_path, user=True)


def test_metrics_options_pass_through(tmp_path):
    unit, text, _ = service_unit(str(tmp_path / "q.db"), "--metrics-port", "9464",
                                 "--metrics-host", "0.0.0.0", "--stop-timeout", "1m")
    argv = unquote(unit["Service"]["ExecStart"][0])
    assert argv[argv.index("--metrics-port") + 1] == "9464"
    assert argv[argv.index("--metrics-host") + 1] == "0.0.0.0"
    verify(text, tmp_path, user=False)


@pytest.mark.parametrize("args, code, text", [
    (["--metrics-host", "0.0.0.0"], 2, "--metrics-port"),
    (["--metrics-port", "99999"], 2, "port"),
    (["--count", "0"], 2, "at least 1"),
    (["--count", "65"], 2, "at most 64"),
    (["--stop-timeout", "soon"], 2, "soon"),
    (["--queues", "a b"], 2, "queue"),
    (["--bogus"], 2, "unrecognized"),
])
def test_bad_input_is_one_line_and_exit_2(db_path, args, code, text):
    result = run_cli(str(db_path), "service", "unit", *args)
    assert result.returncode == code and result.stdout == "", result
    assert len(result.stderr.strip().splitlines()) == 1 and text in result.stderr


def test_a_foreign_file_is_a_database_error(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("not sqlite at all, and long enough to have a header\n" * 4)
    result = run_cli(str(bad), "service", "unit")
    assert result.returncode == 5 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "not a queuectl database" in result.stderr


def test_a_system_unit_runs_as_the_user_named_and_warns_for_root(tmp_path):
    db = str(tmp_path / "q.db")
    named = run_cli(db, "service", "unit", "--run-as", "jobs", "--stop-timeout", "1m")
    assert named.returncode == 0 and "\nUser=jobs\n" in named.stdout
    root = run_cli(db, "service", "unit", "--run-as", "root", "--stop-timeout", "1m")
    assert "User=root" in root.stdout and "every job anyone enqueues runs as root" in root.stderr
    bad = run_cli(db, "service", "unit", "--run-as", "a b", "--stop-timeout", "1m")
    assert bad.returncode == 2 and "--run-as takes a user name" in bad.stderr and not bad.stdout
