"""Bulk enqueues of named ids through real processes, on SQLite and PostgreSQL
(issue 25 #9): the rows a killed enqueue staged are cleared at once by the next
writer that meets them, and two enqueues racing for the same ids end with
exactly one winner."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from queuectl_tui.engine.storage.models import Batch, Job
from queuectl_tui.engine.storage.opening import open_database
from tests.helpers import cli_env, cli_json, run_cli, wait_for

LINES = 60_000  # three slices of batches.SLICE_ROWS: the staging takes a second or two


@pytest.fixture
def look(db):
    """An in-process connection to read what the enqueues left."""
    opened = open_database(db)
    yield opened
    opened.close()


def named_file(tmp_path, name: str, reverse: bool = False):
    path = tmp_path / name
    order = range(LINES - 1, -1, -1) if reverse else range(LINES)
    path.write_text("".join(json.dumps({"id": f"N{i}", "command": "true"}) + "\n"
                            for i in order))
    return path


def start_enqueue(db, path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "queuectl_tui", "enqueue", "--file",
                             str(path)], env=cli_env(db), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def staged(look) -> int:
    return Job.select().where(Job.state == "staged").count()


def kill_while_staging(db, look, path) -> None:
    """Start a bulk enqueue and SIGKILL it between its first slice and its seal:
    the window in which its staged rows hold their ids."""
    bulk = start_enqueue(db, path)
    try:
        wait_for(lambda: staged(look) > 0 or bulk.poll() is not None, 60, interval=0.005,
                 message="the bulk enqueue to stage its first slice")
    finally:
        bulk.send_signal(signal.SIGKILL)
        bulk.communicate()
    assert [b.sealed_at for b in Batch.select()] == [None], "the kill was meant to land " \
        "before the seal"
    assert 0 < staged(look) < LINES


def test_a_killed_bulk_enqueue_does_not_hold_its_ids_from_a_rerun(db, look, tmp_path):
    run_cli(db, "status")
    path = named_file(tmp_path, "named.jsonl")
    kill_while_staging(db, look, path)
    shown = run_cli(db, "show", "N0")
    assert shown.returncode == 3, shown.stderr  # a staged row is not a job
    rerun = run_cli(db, "enqueue", "--file", str(path), "--json", timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["enqueued"] == LINES
    assert cli_json(db, "status")["counts"]["pending"] == LINES
    assert staged(look) == 0 and Batch.select().count() == 0
    assert cli_json(db, "show", "N0")["state"] == "pending"


def test_a_single_enqueue_clears_the_ids_a_killed_bulk_enqueue_held(db, look, tmp_path):
    run_cli(db, "status")
    kill_while_staging(db, look, named_file(tmp_path, "named.jsonl"))
    one = run_cli(db, "enqueue", "--id", "N0", "true")
    assert one.returncode == 0, one.stderr
    assert staged(look) == 0 and Batch.select().count() == 0
    assert [j["id"] for j in cli_json(db, "list")] == ["N0"]


@pytest.mark.parametrize("trial", range(3))
def test_two_bulk_enqueues_racing_for_the_same_ids_leave_exactly_one_winner(
        db, look, tmp_path, trial):
    run_cli(db, "status")
    forward = named_file(tmp_path, "forward.jsonl")
    backward = named_file(tmp_path, "backward.jsonl", reverse=True)
    racers = [start_enqueue(db, forward), start_enqueue(db, backward)]
    results = [(p.wait(120), *p.communicate()) for p in racers]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 4], results
    [(_, _, refusal)] = [r for r in results if r[0] == 4]
    assert len(refusal.strip().splitlines()) == 1 and "nothing was enqueued" in refusal
    assert cli_json(db, "status")["counts"]["pending"] == LINES
    assert staged(look) == 0 and Batch.select().count() == 0


def test_a_pool_clears_a_killed_bulk_enqueue_of_another_host_at_once(db, look, tmp_path, pools):
    """The writer's lock, not its host and pid, says it is gone: a batch written
    from another host (as on a shared PostgreSQL) no longer waits an hour."""
    run_cli(db, "status")
    kill_while_staging(db, look, named_file(tmp_path, "named.jsonl"))
    Batch.update(host="another-host.example").execute()
    pools(1)
    wait_for(lambda: staged(look) == 0 and Batch.select().count() == 0, 30,
             message="the pool to clear the dead batch")
    assert cli_json(db, "status")["counts"]["pending"] == 0
