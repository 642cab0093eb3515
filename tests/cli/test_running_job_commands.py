"""`pause`, `resume`, `snooze`, `extend` and `queue max-timeout` as a contract,
no worker needed: JSON only on stdout, one line on stderr and the documented
exit code for every refusal, nothing changed. A running job is made by a claim
in this process, its claim token handed to the command as a job's environment
would be. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from queuectl_tui.engine import open_database
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from tests.helpers import cli_env, cli_json, run_cli


@pytest.fixture
def running(db):
    """A job `r` held by a claim (no worker runs it), `later` waiting, and the run's token."""
    opened = open_database(db)
    queue = Queue(opened)
    queue.enqueue(JobSpec(command="sleep 60", id="r", timeout=10))
    claimed = queue.claim("w-test", 60)
    queue.enqueue(JobSpec(command="true", id="later", delay=3600))
    opened.close()
    return claimed.claim_token


def in_job(db, token: str | None, *args: str, job_id: str = "r") -> subprocess.CompletedProcess:
    """The command as a job would run it: its id and run in the environment."""
    env = cli_env(db, QUEUECTL_JOB_ID=job_id)
    if token is not None:
        env["QUEUECTL_CLAIM"] = token
    return subprocess.run([sys.executable, "-m", "queuectl_tui", *args], env=env,
                          capture_output=True, text=True, timeout=60,
                          start_new_session=True)  # its own group: a snooze signals it


def refused(result: subprocess.CompletedProcess, code: int, words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert words in result.stderr, result.stderr


def test_pause_and_resume_answer_in_json_and_refuse_what_is_not_running(db, running):
    out = cli_json(db, "pause", "r")
    assert out == {"results": [{"id": "r", "result": "pausing"}]}
    assert cli_json(db, "show", "r")["pause_requested"] is True
    assert cli_json(db, "resume", "r") == {"results": [{"id": "r", "result": "resuming"}]}
    refused(run_cli(db, "pause", "r", "later", "--json"), 4, "hold keeps a waiting job")
    assert cli_json(db, "show", "r")["pause_requested"] is False  # all or nothing
    refused(run_cli(db, "pause", "nope"), 3, "no job with id 'nope'")
    assert run_cli(db, "resume").returncode == 2


def test_snooze_from_inside_the_job_exits_75_and_records_it(db, running):
    done = in_job(db, running, "snooze", "5m", "--json")
    assert done.returncode == 75, done.stderr
    assert json.loads(done.stdout) == {"id": "r", "snooze_for": 300.0, "number": 1,
                                       "max_snoozes": 10}
    stale = in_job(db, "another-run", "snooze", "5m")
    refused(stale, 4, "this run of job r is over")
    refused(in_job(db, running, "snooze", "31d"), 2, "a snooze is at most 30d")
    refused(in_job(db, running, "snooze", "5m", job_id="later"), 4,
            "only a running job can snooze")


def test_snooze_and_extend_need_a_job(db, running):
    env = {k: v for k, v in cli_env(db).items() if k not in ("QUEUECTL_JOB_ID", "QUEUECTL_CLAIM")}
    outside = subprocess.run([sys.executable, "-m", "queuectl_tui", "snooze", "5m"], env=env,
                             capture_output=True, text=True, timeout=60)
    refused(outside, 2, "not inside a job")
    by_id = run_cli(db, "snooze", "1m", "--job", "r")  # from outside: its worker stops it
    assert by_id.returncode == 0 and "job r snoozes" in by_id.stdout


def test_extend_answers_and_refuses_past_the_queue_max_or_without_a_timeout(db, running):
    done = in_job(db, running, "extend", "5s", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"id": "r", "timeout": 10.0, "extended_by": 5.0,
                                       "effective_timeout": 15.0, "max_timeout": None}
    assert cli_json(db, "queue", "max-timeout", "default", "20s")["max_timeout"] == 20
    refused(in_job(db, running, "extend", "6s"), 4, "past queue default's max-timeout 20s")
    assert cli_json(db, "show", "r")["extended_by"] == 5
    refused(run_cli(db, "queue", "max-timeout", "default", "soon"), 2, "invalid duration")
    assert "MAX-TIMEOUT" in run_cli(db, "queue", "list").stdout
    assert cli_json(db, "queue", "max-timeout", "default", "none")["max_timeout"] is None
    refused(in_job(db, running, "extend", "0"), 2, "more than 0")


def test_extend_of_a_job_without_a_timeout_says_so(db):
    opened = open_database(db)
    queue = Queue(opened)
    queue.enqueue(JobSpec(command="sleep 60", id="free"))
    token = queue.claim("w-test", 60).claim_token
    opened.close()
    refused(in_job(db, token, "extend", "5m", job_id="free"), 4, "has no timeout to extend")


def test_snooze_ends_its_own_process_group_but_not_itself(db, running, tmp_path):
    """What a job's shell sees: the snooze's SIGTERM ends it at once."""
    script = (f"{sys.executable} -m queuectl_tui snooze 1m; echo not reached > "
              f"{tmp_path / 'after'}")
    env = cli_env(db, QUEUECTL_JOB_ID="r", QUEUECTL_CLAIM=running)
    shell = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True,
                           timeout=60, start_new_session=True)
    assert shell.returncode == -15, (shell.returncode, shell.stderr)
    assert "job r snoozes" in shell.stdout
    assert not os.path.exists(tmp_path / "after")
