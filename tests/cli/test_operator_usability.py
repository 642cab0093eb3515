"""An operator's first day (issue 25, items 13-18), through real processes:
a pool whose terminal closes, `worker stop` aimed at one host or pool, the
word that no worker runs, `queuectl` without a terminal, and the small ones."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import termios
import time

import pytest

from tests.helpers import WorkerPool, cli_env, cli_json, run_cli, wait_for


def enqueue(db, *args: str) -> str:
    result = run_cli(db, "enqueue", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


def state(db, job_id: str) -> str:
    return cli_json(db, "show", job_id)["state"]


class TerminalPool:
    """`queuectl worker start` in the foreground of a terminal (a pty it holds
    as its controlling terminal, as a shell's job in a tmux pane does)."""

    def __init__(self, db, count: int = 1) -> None:
        self.master, slave = os.openpty()

        def take_terminal() -> None:  # after setsid: the pty becomes ours
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "queuectl_tui", "worker", "start", "--count", str(count)],
            stdin=slave, stdout=slave, stderr=slave, env=cli_env(db),
            start_new_session=True, preexec_fn=take_terminal)
        os.close(slave)
        self.seen = b""

    def wait_for_text(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the pool never printed {text!r}: {self.seen[-2000:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:
                    break

    def close_terminal(self) -> None:
        """What closing the pane does: the terminal hangs up (the session leader,
        here the supervisor, gets SIGHUP) and the shell's SIGHUP reaches the
        whole foreground process group."""
        os.close(self.master)
        os.killpg(self.proc.pid, signal.SIGHUP)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


def test_closing_the_terminal_of_a_foreground_pool_finishes_its_job(tmp_path):
    """Item 13: SIGHUP is a graceful stop; before, the pool died and the job
    stayed `processing` with its worker gone."""
    db = tmp_path / "q.db"
    started = tmp_path / "started"
    job = enqueue(db, f"touch {started}; sleep 1.5; echo finished")
    pool = TerminalPool(db)
    try:
        pool.wait_for_text(f"job {job} in queue default attempt 1/4 claimed")
        # Hang up once the job's shell runs in its own session: a hangup in the
        # microseconds while it is being spawned reaches it too (docs/reliability.md).
        deadline = time.monotonic() + 20
        while not started.exists():
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.01)
        pool.close_terminal()
        assert pool.proc.wait(20) == 0
        shown = cli_json(db, "show", job)
        assert shown["state"] == "completed", shown
        assert shown["runs"] == 1 and "finished" in shown["stdout_tail"]
        assert cli_json(db, "list", "--state", "processing") == []
    finally:
        pool.kill()


def test_a_job_whose_pool_died_says_so_in_status_and_show(db, pools):
    """Item 13: a job left `processing` by a pool killed outright says its worker
    is gone and when it will be rescued."""
    job = enqueue(db, "sleep 30")
    pool = pools(1)
    try:
        wait_for(lambda: state(db, job) == "processing", message="the job to start")
        pool.kill_group()
        shown = run_cli(db, "show", job)
        assert "its worker is gone: it will be rescued when a pool starts" in shown.stdout
        status = run_cli(db, "status")
        assert f"1 job processing with its worker gone ({job}): it will be rescued when a pool " \
               "starts" in status.stdout, status.stdout
        data = cli_json(db, "status")
        assert data["stranded"] == [{"id": job, "worker_id": data["stranded"][0]["worker_id"],
                                     "note": "its worker is gone: it will be rescued when "
                                             "a pool starts"}]
        assert cli_json(db, "show", job)["worker_gone"] is True
    finally:
        pool.close()


def stop_from(db, host: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "queuectl_tui", "worker", "stop", *args],
                          capture_output=True, text=True, timeout=60,
                          env=cli_env(db, QUEUECTL_HOSTNAME=host))


def test_worker_stop_stops_this_hosts_pools_unless_told_otherwise(db, pools):
    """Item 14: `worker stop` typed on one host stopped every pool on every
    host. Now: this host's by default, `--host H`, `--pool PID`, `--all`; and
    a pool stopped that way exits 0 (a unit's Restart=on-failure leaves it down)."""
    assert run_cli(db, "config", "set", "max-retries", "3").returncode == 0  # the schema
    alpha = pools(1, QUEUECTL_HOSTNAME="alpha")
    beta = pools(1, QUEUECTL_HOSTNAME="beta")
    beta2 = pools(1, QUEUECTL_HOSTNAME="beta")
    try:
        for pool in (alpha, beta, beta2):
            pool.wait_ready()
        result = stop_from(db, "alpha", "--wait")
        assert result.returncode == 0, result.stderr
        assert "asked 1 worker(s) on host alpha to stop" in result.stdout
        assert "2 other worker(s) keep running (host beta)" in result.stderr
        assert alpha.wait() == 0
        assert beta.proc.poll() is None and beta2.proc.poll() is None
        assert len(beta.live_workers()) == 1 and len(beta2.live_workers()) == 1

        ids = [w["id"] for w in beta.live_workers()]
        result = stop_from(db, "alpha", "--host", "beta", "--pool", str(beta.proc.pid),
                           "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["asked"] == ids
        assert beta.wait() == 0  # stopped through the database, from "another host"
        assert beta2.proc.poll() is None

        assert stop_from(db, "alpha", "--all", "--host", "beta").returncode == 2
        result = stop_from(db, "alpha", "--all", "--wait")
        assert result.returncode == 0 and "asked 1 worker(s) to stop" in result.stdout
        assert beta2.wait() == 0
    finally:
        for pool in (alpha, beta, beta2):
            pool.close()


NO_WORKER = "no worker is running on this database: start one with `queuectl worker start`"


def test_enqueue_and_wait_say_when_no_worker_runs(tmp_path):
    """Item 16: `enqueue` printed `enqueued ID` and `wait` blocked silently
    with no pool alive. Said once, on stderr; --json's stdout stays JSON."""
    db = tmp_path / "q.db"
    result = run_cli(db, "enqueue", "--id", "a", "true")
    assert result.stdout == "enqueued a\n" and NO_WORKER in result.stderr
    result = run_cli(db, "enqueue", "--id", "b", "true", "--json")
    assert json.loads(result.stdout)["id"] == "b" and NO_WORKER in result.stderr
    result = run_cli(db, "wait", "a", "--timeout", "1s")
    assert result.returncode == 7 and result.stderr.count(NO_WORKER) == 1, result.stderr
    follow = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "logs", "a", "--follow"],
                              env=cli_env(db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        ready, _, _ = select.select([follow.stderr], [], [], 20)
        assert ready and NO_WORKER in follow.stderr.readline()  # then it keeps following
    finally:
        follow.kill()
        follow.wait(10)
        follow.stderr.close()
    pool = WorkerPool(db)
    try:
        pool.wait_ready()
        result = run_cli(db, "enqueue", "--id", "c", "true")
        assert result.returncode == 0 and result.stderr == "", result.stderr
        result = run_cli(db, "wait", "a", "b", "c", "--timeout", "20s")
        assert result.returncode == 0 and result.stderr == "", result.stderr
    finally:
        pool.close()


def test_queuectl_without_a_terminal_prints_the_status_and_exits(tmp_path):
    """Item 17: `queuectl < /dev/null > out` (cron, `ssh host queuectl`, a
    pipe) started the full-screen console and hung."""
    db = tmp_path / "q.db"
    missing = subprocess.run([sys.executable, "-m", "queuectl_tui"], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, env=cli_env(db), timeout=30)
    assert missing.returncode == 0 and "usage: queuectl" in missing.stdout
    assert not db.exists()
    enqueue(db, "true")
    quiet = subprocess.run([sys.executable, "-m", "queuectl_tui"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, env=cli_env(db), timeout=30)
    assert quiet.returncode == 0 and "pending 1" in quiet.stdout, quiet
    assert "no terminal" in quiet.stderr
    master, slave = os.openpty()  # a terminal for input, output to a file: `queuectl > out`
    try:
        piped = subprocess.run([sys.executable, "-m", "queuectl_tui"], stdin=slave,
                               capture_output=True, text=True, env=cli_env(db), timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    assert piped.returncode == 0 and "pending 1" in piped.stdout, piped
    tui = subprocess.run([sys.executable, "-m", "queuectl_tui", "tui"], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, env=cli_env(db), timeout=30)
    assert tui.returncode == 2 and "the console needs a terminal" in tui.stderr


SECRET = "hunter2-Zq9"


@pytest.mark.parametrize("url", [
    f"postgresql://queue@db.internal:5432/jobs?password={SECRET}",
    f"postgresql://queue:{SECRET}@db.internal/jobs?sslmode=require",
    f"postgres://queue@db.internal/jobs?sslmode=require&sslpassword={SECRET}",
])
def test_a_password_in_any_form_stays_out_of_the_unit_and_errors(tmp_path, url):
    """Item 12: `?password=` went into the unit's Description= and Environment=
    and into connection errors."""
    unit = subprocess.run([sys.executable, "-m", "queuectl_tui", "--db", url, "service", "unit",
                           "--stop-timeout", "60"], capture_output=True, text=True,
                          env=cli_env(tmp_path / "unused.db"), timeout=60)
    assert unit.returncode == 0, unit.stderr
    assert SECRET not in unit.stdout + unit.stderr
    assert "EnvironmentFile=/etc/queuectl/queuectl-worker.env" in unit.stdout
    assert "QUEUECTL_DB" not in unit.stdout
    refused = url.replace("db.internal:5432", "127.0.0.1:1").replace("db.internal", "127.0.0.1:1")
    status = run_cli(refused, "status")
    assert status.returncode == 5 and "cannot connect" in status.stderr, status.stderr
    assert SECRET not in status.stderr and "***" in status.stderr


@pytest.mark.postgres
def test_a_pool_on_postgres_keeps_the_password_and_its_logs_private(pg_database, tmp_path):
    """Item 12: the pool's start line showed `?password=`, and `pg-logs/` was
    created 0755 by `mkdir(parents=True)`."""
    from tests.conftest import _reset_pg
    _reset_pg(pg_database)
    url = f"{pg_database}?password={SECRET}"  # the test server trusts: the password is unused
    data = tmp_path / "data"
    env = cli_env(url, XDG_DATA_HOME=str(data))
    job = subprocess.run([sys.executable, "-m", "queuectl_tui", "enqueue", "echo hi", "--json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert job.returncode == 0, job.stderr
    pool = WorkerPool(url, 1, XDG_DATA_HOME=str(data))
    try:
        wait_for(lambda: cli_json(url, "show", json.loads(job.stdout)["id"])["state"]
                 == "completed", message="the job to run")
        assert cli_json(url, "status")["database"].endswith("?password=***")
        pool.signal(signal.SIGTERM)
        assert pool.wait() == 0
        log = pool.proc.stderr.read()
        assert "?password=*** (pids" in log and SECRET not in log, log
    finally:
        pool.close()
    folder = data / "queuectl" / "pg-logs"
    logs = next(folder.iterdir())
    assert (folder.stat().st_mode & 0o777, logs.stat().st_mode & 0o777) == (0o700, 0o700)


def test_the_consoles_words_for_states_work_everywhere(tmp_path):
    """Item 15: `list --state running` and `--state done` were errors; `delete`
    said "running" and `requeue` "processing" of the same job."""
    db = tmp_path / "q.db"
    assert run_cli(db, "enqueue", "--id", "ok", "true").returncode == 0
    assert run_cli(db, "enqueue", "--id", "long", "sleep 30").returncode == 0
    pool = WorkerPool(db)
    try:
        wait_for(lambda: state(db, "ok") == "completed" and state(db, "long") == "processing",
                 message="one job done, one running")
        assert [j["id"] for j in cli_json(db, "list", "--state", "running")] == ["long"]
        assert [j["id"] for j in cli_json(db, "list", "--state", "Done,retrying")] == ["ok"]
        assert cli_json(db, "prune", "--state", "done", "--older-than", "1h", "--dry-run")
        delete = run_cli(db, "delete", "long")
        requeue = run_cli(db, "requeue", "long")
        for refused in (delete, requeue):
            assert refused.returncode == 4
            assert "job long is processing (running);" in refused.stderr, refused.stderr
        unknown = run_cli(db, "list", "--state", "finished")
        assert unknown.returncode == 2 and "failed (retrying)" in unknown.stderr
        assert cli_json(db, "requeue", "--all-state", "done")["requeued"] == ["ok"]
    finally:
        pool.close()


# ------------------------------------------------------------------ item 18: small ones

def test_a_commands_own_options_suggest_dash_dash(tmp_path):
    db = tmp_path / "q.db"
    for args in (["enqueue", "ls", "-la"],
                 ["schedule", "add", "nightly", "--cron", "30 2 * * *", "./backup.sh", "--full"]):
        result = run_cli(db, *args)
        assert result.returncode == 2 and "after `--`" in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    assert not db.exists()


def test_a_detached_pool_that_fails_at_start_says_why_and_where_its_log_is(tmp_path):
    import socket
    db = tmp_path / "q.db"
    result = run_cli(db, "worker", "start", "--detach", "--metrics-port", "9464",
                     "--metrics-host", "256.1.1.1")
    assert result.returncode != 0
    assert "cannot serve metrics on 256.1.1.1:9464" in result.stderr, result.stderr
    assert f"its log: {tmp_path / 'q.db.logs' / 'workers.log'}" in result.stderr
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = str(taken.getsockname()[1])
        result = run_cli(db, "worker", "start", "--detach", "--metrics-port", port)
        assert result.returncode != 0 and f"127.0.0.1:{port}" in result.stderr, result.stderr
    finally:
        taken.close()


def test_log_in_a_missing_folder_is_refused(tmp_path):
    try:
        result = run_cli(tmp_path / "q.db", "worker", "start", "--detach",
                         "--log", str(tmp_path / "nonexistent" / "dir" / "x.log"))
        assert result.returncode == 2 and "no folder" in result.stderr
        assert not (tmp_path / "nonexistent").exists()
    finally:  # a pool the old code started
        run_cli(tmp_path / "q.db", "worker", "stop", "--wait")


def test_unique_for_without_a_key_and_a_boolean_exit_code_are_refused(tmp_path):
    db = tmp_path / "q.db"
    for args in (["enqueue", "true", "--unique-for", "1h"],
                 ["enqueue", '{"command": "true", "unique_for": 60}'],
                 ["enqueue", '{"command": "true", "no_retry_on": [1, "timeout", true]}']):
        result = run_cli(db, *args)
        assert result.returncode == 2, (args, result.stderr)
    assert "unique_for goes with unique_key" in run_cli(db, "enqueue", "true", "--unique-for",
                                                        "1h").stderr
    assert not db.exists() or cli_json(db, "list") == []


def test_enqueue_json_is_the_job_as_enqueued(tmp_path):
    """Before, the job was read after the commit: a fast pool had already
    claimed or finished it."""
    db = tmp_path / "q.db"
    pool = WorkerPool(db, 2)
    try:
        pool.wait_ready()
        seen = []
        for _ in range(40):
            job = json.loads(run_cli(db, "enqueue", "true", "--json").stdout)
            seen.append((job["state"], job["attempts"], job["runs"], job["worker_id"]))
        assert set(seen) == {("pending", 0, 0, None)}, seen
    finally:
        pool.close()


def test_dlq_retry_of_an_unknown_queue_is_not_found(tmp_path):
    db = tmp_path / "q.db"
    assert run_cli(db, "enqueue", "true").returncode == 0
    result = run_cli(db, "dlq", "retry", "--all", "--queue", "mail")
    assert result.returncode == 3 and "no queue named 'mail'" in result.stderr
    assert run_cli(db, "dlq", "list", "--queue", "mail").returncode == 3
    assert run_cli(db, "dlq", "retry", "--all", "--queue", "default").returncode == 0


def test_compound_durations_everywhere(tmp_path):
    db = tmp_path / "q.db"
    job = json.loads(run_cli(db, "enqueue", "true", "--timeout", "1h30m", "--json").stdout)
    assert job["timeout"] == 5400
    assert run_cli(db, "queue", "retention", "default", "--completed", "2d12h").returncode == 0
    assert run_cli(db, "config", "set", "retention-dead", "1d6h").returncode == 0
    assert cli_json(db, "config", "get", "retention-dead")["value"] == 108000
    bad = run_cli(db, "enqueue", "true", "--timeout", "30m1h")
    assert bad.returncode == 2 and "largest first" in bad.stderr


def test_every_enqueue_option_and_the_queue_hook_have_help(tmp_path):
    text = run_cli(tmp_path / "q.db", "enqueue", "--help").stdout
    for flag in ("--id ID ", "--max-retries N "):
        line = next(line for line in text.splitlines() if line.strip().startswith(flag.strip()))
        assert len(line.split(None, 2)) == 3, line  # the flag, its metavar, and help text
    assert "finish hook" in run_cli(tmp_path / "q.db", "queue", "--help").stdout


def test_worker_stop_and_config_on_a_database_that_does_not_exist_yet(tmp_path):
    db = tmp_path / "none.db"
    stop = run_cli(db, "worker", "stop", "--wait")
    assert stop.returncode == 0 and "no pool runs" in stop.stdout, stop.stderr
    assert cli_json(db, "worker", "stop")["asked"] == []
    assert cli_json(db, "config", "show")["max-retries"] == 3
    got = run_cli(db, "config", "get", "lease-seconds")
    assert got.returncode == 0 and got.stdout == "10\n"
    assert not db.exists() and not (tmp_path / "none.db.logs").exists()
