"""Issue 28, a hand on every job, through real pools on SQLite and PostgreSQL:
a held job never runs while a pool sits idle and claims other work, and runs
once released; `edit --command` racing a pool's claim either edits a job that
then runs as edited or is refused (exit 4) with the job unchanged, never half;
a release whose dependency has not completed waits blocked, then runs."""

from __future__ import annotations

import json

from queuectl_tui.clock import Ids
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from tests.helpers import cli_json, run_cli, wait_for


def enqueue(db, *args: str) -> str:
    result = run_cli(db, "enqueue", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


def state(db, job_id: str) -> str:
    return cli_json(db, "show", job_id)["state"]


def test_a_held_job_never_runs_while_a_pool_waits_and_runs_once_released(db, pools, tmp_path):
    ran = tmp_path / "held-ran"
    held = enqueue(db, "--hold", f"touch {ran}")
    pool = pools(2)
    pool.wait_ready()
    # The pool is alive and claiming the whole time the held job waits: rounds
    # of other jobs come and go, each waited for, then the pool is idle again.
    for round_ in range(3):
        others = [enqueue(db, f"echo other-{round_}-{i}") for i in range(3)]
        wait_for(lambda: all(state(db, j) == "completed" for j in others), 30,
                 message=f"round {round_} of other jobs to complete")
        wait_for(lambda: all(w["state"] == "idle" for w in pool.live_workers()), 10,
                 message="the pool idle again")
        assert state(db, held) == "held" and not ran.exists()
    status = cli_json(db, "status")
    assert status["counts"]["held"] == 1 and status["counts"]["completed"] == 9
    result = run_cli(db, "release", held, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"results": [{"id": held, "result": "pending",
                                                      "why": None}]}
    wait_for(lambda: state(db, held) == "completed", 15, message="the released job to run")
    assert ran.exists()
    history = [json.loads(line) for line in
               run_cli(db, "history", "--job", held, "--json").stdout.splitlines()]
    moves = [(e["from"], e["to"]) for e in reversed(history)]
    assert moves[:3] == [(None, "held"), ("held", "pending"), ("pending", "processing")]


def test_edit_racing_a_claim_is_all_or_nothing(db, pools, tmp_path):
    """Each round enqueues a job due a little later (0 to 0.6 s: before, around
    and after the `edit` command lands) and edits its command while two idle
    workers wait for it. Whatever the order, the job ran exactly the command
    its final row names: edited (exit 0, the edit's event before the claim's)
    or refused (exit 4, the row unchanged)."""
    out = tmp_path / "out"
    out.mkdir()
    pool = pools(2)
    pool.wait_ready()
    opened = open_database(db)
    queue = Queue(opened, ids=Ids())  # enqueues at once, and reads the outcome
    rounds = 24
    outcomes = []
    try:
        for i in range(rounds):
            jitter = 0.6 * i / (rounds - 1)
            job = queue.enqueue(JobSpec(command=f"echo old-{i} > {out}/r{i}", id=f"race-{i}",
                                        delay=jitter))["id"]
            result = run_cli(db, "edit", job, "--command", f"echo new-{i} > {out}/r{i}",
                             "--json")
            assert result.returncode in (0, 4), result.stderr
            outcomes.append((job, i, result.returncode, result.stderr))
        wait_for(lambda: all(queue.get(job).state == "completed" for job, *_ in outcomes), 60,
                 message="every raced job to run")
        for job, i, code, stderr in outcomes:
            ran = (out / f"r{i}").read_text().strip()
            kinds = [e["note"].split(":")[0] if e["note"] else f"{e['from']}->{e['to']}"
                     for e in queue.history(job)][::-1]
            assert len(queue.attempts(job)) == 1
            if code == 0:
                assert queue.get(job).command == f"echo new-{i} > {out}/r{i}"
                assert ran == f"new-{i}"
                assert kinds.index("edited") < kinds.index("pending->processing"), kinds
            else:
                assert "processing" in stderr or "completed" in stderr, stderr
                assert queue.get(job).command == f"echo old-{i} > {out}/r{i}"
                assert ran == f"old-{i}"
                assert "edited" not in kinds
    finally:
        opened.close()
    codes = [code for _, _, code, _ in outcomes]
    # The spread of due times puts some claims before the edit and some after.
    assert 0 in codes and 4 in codes, codes


def test_release_with_an_unfinished_dependency_waits_blocked_then_runs(db, pools, tmp_path):
    gate = tmp_path / "gate"
    dep = enqueue(db, f"while [ ! -e {gate} ]; do sleep 0.05; done")
    job = enqueue(db, "--hold", "--after", dep, "echo after")
    pools(2).wait_ready()
    wait_for(lambda: state(db, dep) == "processing", 15, message="the dependency to start")
    result = run_cli(db, "release", job)
    assert result.returncode == 0, result.stderr
    assert f"{job} blocked: waits for {dep}" in result.stdout
    assert state(db, job) == "blocked"
    gate.touch()
    wait_for(lambda: state(db, job) == "completed", 20, message="the released job to run")
