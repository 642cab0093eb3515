"""Survival under pressure, with real processes: a stalled worker, a job that kills
its worker, huge output, and many writers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tests.helpers import cli_env, cli_json, run_cli, wait_for
from tests.workers.test_pool_lifecycle import enqueue, state_of, wait_state


def history(db, job: str) -> list[dict]:
    import json
    return [json.loads(line) for line in
            run_cli(db, "history", "--job", job, "--json").stdout.splitlines()][::-1]


def worker_pid(db, worker_id: str) -> int:
    return next(w["pid"] for w in cli_json(db, "worker", "list", "--all") if w["id"] == worker_id)


def test_stalled_worker_cannot_overwrite_the_rescued_result(db, pools, tmp_path):
    """The stalled worker wakes while the rescued job runs again under a new
    claim: the job is `processing` again, so only the claim token keeps the
    stale outcome (its run was killed by the rescuer, or ends) from landing."""
    run_cli(db, "config", "set", "lease-seconds", "2")
    runs = tmp_path / "runs"
    job = enqueue(db, f"echo run >> {runs}; sleep 8; echo finished")
    pools(1)
    first = wait_state(db, job, "processing")
    stalled = worker_pid(db, first["worker_id"])
    os.kill(stalled, signal.SIGSTOP)  # stalls past twice the lease
    try:
        pools(1)
        wait_for(lambda: (lambda j: j["state"] == "processing" and j["attempts"] == 2
                          and j["worker_id"] != first["worker_id"] and j)(state_of(db, job)),
                 30, message="the job to run again on the second pool")
    finally:
        os.kill(stalled, signal.SIGCONT)
    second = state_of(db, job)
    # The stalled worker wakes, records what it has (its run was lost) and goes
    # back to work, all while the second run still sleeps.
    wait_for(lambda: next(w for w in cli_json(db, "worker", "list")
                          if w["id"] == first["worker_id"])["state"] == "idle",
             15, message="the stalled worker to resume")
    during = state_of(db, job)
    assert (during["state"], during["worker_id"], during["attempts"]) == \
        ("processing", second["worker_id"], 2), during
    assert [e["to"] for e in history(db, job)][-1] == "processing", history(db, job)
    done = wait_state(db, job, "completed", timeout=30)
    assert (done["worker_id"], done["attempts"], done["stdout_tail"]) == \
        (second["worker_id"], 2, "finished\n")
    completions = [e for e in history(db, job) if e["to"] == "completed"]
    assert len(completions) == 1
    assert runs.read_text() == "run\nrun\n"


def test_poison_pill_dies_after_one_plus_max_retries_runs(db, pools, tmp_path):
    runs = tmp_path / "runs"
    job = enqueue(db, f"echo x >> {runs}; kill -9 $PPID", "--max-retries", "2")
    pools(2)
    dead = wait_state(db, job, "dead", timeout=60)
    assert dead["attempts"] == 3
    assert runs.read_text().count("x") == 3
    assert "died" in dead["last_error"] or "lost" in dead["last_error"]


def _rss_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_200mb_of_output_keeps_worker_memory_flat(db_path, pools):
    pool = pools(1, target=str(db_path))
    pid = pool.wait_ready()[0]["pid"]
    before = _rss_kb(pid, "VmRSS")
    job = enqueue(db_path, "head -c 100000000 /dev/urandom & "
                           "head -c 100000000 /dev/urandom >&2; wait")
    wait_state(db_path, job, "completed", timeout=120)
    growth_mb = (_rss_kb(pid, "VmHWM") - before) / 1024
    assert growth_mb < 50, f"worker grew by {growth_mb:.1f} MB"
    log = db_path.parent / "queue.db.logs"
    assert sum(p.stat().st_size for p in log.iterdir()) >= 200_000_000


WRITER = textwrap.dedent("""
    import sys
    from queuectl_tui.engine.jobspec import JobSpec
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    q = Queue(open_database(None))
    tag, n = sys.argv[1], int(sys.argv[2])
    for i in range(n):
        q.enqueue(JobSpec(command="true", id=f"{tag}-{i}"))
""")
READER = textwrap.dedent("""
    import sys, time
    from queuectl_tui.engine.queue import Queue
    from queuectl_tui.engine.storage.opening import open_database
    q = Queue(open_database(None))
    deadline = time.monotonic() + float(sys.argv[1])
    reads = 0
    while time.monotonic() < deadline:
        q.counts(); list(q.jobs(limit=50)); q.workers(); list(q.history(limit=50))
        reads += 1
    print(reads)
""")


def test_many_writers_workers_and_a_reader_at_once(db, pools):
    pools(2)
    env = cli_env(db)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, f"w{k}", "150"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k in range(3)]
    reader = subprocess.Popen([sys.executable, "-c", READER, "4"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for proc in [*writers, reader]:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and err == "", err
    assert int(out) > 10, "the reader was starved"
    wait_for(lambda: cli_json(db, "status")["counts"]["completed"] == 450, 60,
             message="all 450 jobs completed")
