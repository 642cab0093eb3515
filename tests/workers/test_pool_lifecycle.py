"""Real worker processes against a real SQLite file: the lifecycle scenarios,
rescue after SIGKILL, graceful stop, timeouts and output capture."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli_env, cli_json, jobs_by_id, pid_alive, run_cli, wait_for


def enqueue(db, *args: str) -> str:
    result = run_cli(db, "enqueue", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


def state_of(db, job_id: str) -> dict:
    return cli_json(db, "show", job_id)


def wait_state(db, job_id: str, *states: str, timeout: float = 20.0) -> dict:
    seen: list[dict] = []

    def reached():
        job = state_of(db, job_id)
        seen[:] = [job]
        return job["state"] in states and job

    try:
        return wait_for(reached, timeout, message=f"job {job_id} to become {'/'.join(states)}")
    except AssertionError as exc:  # say where it was, for a failure seen only under load
        last = seen[0] if seen else {}
        fields = {k: last.get(k) for k in ("state", "attempts", "last_error", "run_at",
                                           "next_retry_at", "worker_id", "updated_at")}
        raise AssertionError(f"{exc}; last seen {fields} at {time.time():.3f}") from None


def procs_running(needle: str) -> list[int]:
    """Live processes whose command line holds `needle`, among those this
    checkout's tests started (their environment carries its PYTHONPATH, see
    cli_env): other worktrees run the same suites on the same machine, and
    their `sleep 300` is not ours to find."""
    ours = b"\0PYTHONPATH=" + str(ROOT).encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if needle.encode() not in fh.read().replace(b"\0", b" "):
                    continue
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if ours in b"\0" + fh.read() and pid_alive(int(pid)):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_job_completes_with_output_and_survives_restart(db, pools):
    run_cli(db, "config", "set", "max-retries", "4")
    job = enqueue(db, "echo out-line; echo err-line >&2")
    pool = pools(1)
    done = wait_state(db, job, "completed")
    assert (done["exit_code"], done["attempts"], done["max_retries"]) == (0, 1, 4)
    assert done["stdout_tail"] == "out-line\n" and done["stderr_tail"] == "err-line\n"
    log = run_cli(db, "logs", job).stdout
    assert "out-line" in log and "err-line" in log and "attempt 1" in log
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0
    # Everything is still there for new processes: jobs, states, config, history.
    assert state_of(db, job)["state"] == "completed"
    assert cli_json(db, "config", "get", "max-retries")["value"] == 4
    assert len(run_cli(db, "history", "--job", job, "--json").stdout.splitlines()) == 3
    assert cli_json(db, "status")["workers"] == []


def test_failing_job_retries_with_backoff_then_dies(db, pools):
    run_cli(db, "config", "set", "backoff-base", "1.5")
    job = enqueue(db, "echo nope >&2; exit 7", "--max-retries", "2")
    pools(1)
    dead = wait_state(db, job, "dead", timeout=30)
    assert (dead["attempts"], dead["exit_code"]) == (3, 7)
    assert dead["last_error"] == "exit code 7: nope"
    events = [json.loads(line) for line in
              run_cli(db, "history", "--job", job, "--json").stdout.splitlines()][::-1]
    starts = [e for e in events if e["to"] == "processing"]
    fails = [e for e in events if e["from"] == "processing"]
    assert [e["to"] for e in fails] == ["failed", "failed", "dead"]
    from queuectl_tui.clock import parse_iso
    gaps = [parse_iso(s["at"]) - parse_iso(f["at"]) for f, s in zip(fails, starts[1:])]
    # The retry's run_at counts from the run's end; the `failed` event is stamped
    # when the move is written, a little later (after the write lock, under load
    # tens of ms), so the gap between the events may fall short of the backoff by that.
    slack = 0.05
    assert gaps[0] >= 1.5 - slack and gaps[1] >= 1.5 ** 2 - slack, gaps
    assert [j["id"] for j in cli_json(db, "dlq", "list")] == [job]
    assert cli_json(db, "dlq", "retry", job) == {"retried": [job]}
    wait_state(db, job, "dead", "failed", timeout=30)


def test_many_jobs_across_two_worker_start_commands_run_exactly_once(db, pools, tmp_path):
    out = tmp_path / "ran.txt"
    lines = "".join(json.dumps({"id": f"j{i}", "command": f"echo j{i} >> {out}"}) + "\n"
                    for i in range(300))
    assert run_cli(db, "enqueue", "--file", "-", input=lines).returncode == 0
    pools(2)
    pools(2)
    wait_for(lambda: cli_json(db, "status")["counts"]["completed"] == 300, 60,
             message="300 jobs completed")
    ran = Counter(out.read_text().split())
    assert len(ran) == 300 and set(ran.values()) == {1}
    jobs = jobs_by_id(db)
    assert {j["attempts"] for j in jobs.values()} == {1}
    workers_used = {j["worker_id"] for j in jobs.values()}
    assert len(workers_used) >= 2, "both pools should have taken jobs"


def hangs_first_time(tmp_path, seconds: int, then: str) -> str:
    """A command that hangs in `sleep SECONDS` on its first run and echoes `then` after."""
    marker = tmp_path / f"first-run-{seconds}"
    return f"if [ -e {marker} ]; then echo {then}; else touch {marker}; sleep {seconds}; fi"


def start_hanging_job(db, pools, tmp_path, seconds: int, then: str, **env: str):
    job = enqueue(db, hangs_first_time(tmp_path, seconds, then))
    pool = pools(1, **env)
    running = wait_state(db, job, "processing")
    wait_for(lambda: procs_running(f"sleep {seconds}"), message="the job's sleep to start")
    return job, pool, running


def test_sigkilled_worker_job_is_rescued_and_its_process_group_killed(db, pools, tmp_path):
    run_cli(db, "config", "set", "lease-seconds", "3")
    job, pool, running = start_hanging_job(db, pools, tmp_path, 613, "second")
    victim = next(w for w in cli_json(db, "worker", "list") if w["id"] == running["worker_id"])
    os.kill(victim["pid"], signal.SIGKILL)
    # 30 s: under a loaded CI box the replacement's start, a crash-loop delay and
    # the retry's backoff add up; the pool's log is printed at teardown on failure.
    done = wait_state(db, job, "completed", timeout=30)
    assert done["attempts"] == 2 and done["stdout_tail"] == "second\n"
    assert not procs_running("sleep 613"), "the dead worker's job kept running"
    assert cli_json(db, "status")["counts"]["processing"] == 0
    # The supervisor replaced the dead worker.
    wait_for(lambda: len(pool.live_workers()) == 1, message="a replacement worker")
    states = {w["id"]: w["state"] for w in cli_json(db, "worker", "list", "--all")}
    assert states[victim["id"]] in ("stopped", "gone")


def test_whole_pool_killed_job_is_rescued_by_lease_from_another_pool(db, pools, tmp_path):
    run_cli(db, "config", "set", "lease-seconds", "2")
    job, first, _ = start_hanging_job(db, pools, tmp_path, 614, "again")
    first.kill_group()  # supervisor and worker die at once; no cleanup code runs
    killed_at = time.monotonic()
    wait_for(lambda: [w for w in cli_json(db, "worker", "list") if w["state"] == "gone"],
             10, message="the killed worker to show as gone")
    assert [w["state"] for w in cli_json(db, "status")["workers"]] == ["gone"]
    pools(1)
    done = wait_state(db, job, "completed", timeout=20)
    assert time.monotonic() - killed_at < 15
    assert done["attempts"] == 2 and done["stdout_tail"] == "again\n"
    assert not procs_running("sleep 614")
    assert cli_json(db, "status")["counts"]["processing"] == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop_finishes_the_running_job(db, pools, sig):
    job = enqueue(db, "sleep 1.5; echo finished")
    pool = pools(1)
    wait_state(db, job, "processing")
    later = enqueue(db, "echo never")
    pool.signal(sig)
    assert pool.wait(30) == 0
    done = state_of(db, job)
    assert (done["state"], done["stdout_tail"]) == ("completed", "finished\n")
    assert state_of(db, later)["state"] == "pending", "claimed after the stop"


def test_worker_stop_from_another_terminal(db, pools):
    pool = pools(2)
    pool.wait_ready()
    job = enqueue(db, "sleep 2; echo ok")
    wait_state(db, job, "processing")
    result = run_cli(db, "worker", "stop", "--wait", "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["asked"]) == 2
    assert pool.wait(30) == 0
    assert state_of(db, job)["state"] == "completed"
    assert cli_json(db, "status")["workers"] == []


def test_timeout_kills_the_whole_process_group(db, pools):
    job = enqueue(db, "sleep 997 & sleep 998; wait", "--timeout", "1", "--max-retries", "0")
    pools(1)
    started = time.monotonic()
    dead = wait_state(db, job, "dead", timeout=15)
    assert time.monotonic() - started < 6
    assert dead["last_error"] == "timed out after 1 s"
    wait_for(lambda: not procs_running("sleep 997") and not procs_running("sleep 998"), 5,
             message="the timed-out job's children to be gone")


def test_command_not_found_is_a_failure(db, pools):
    job = enqueue(db, "definitely-not-a-command-xyz", "--max-retries", "0")
    pools(1)
    dead = wait_state(db, job, "dead")
    assert dead["exit_code"] == 127 and "command not found" in dead["last_error"]


def test_large_interleaved_output_does_not_deadlock(db, pools):
    # 16 MB on each stream at once, with bytes that are not UTF-8.
    job = enqueue(db, "head -c 16000000 /dev/urandom & "
                           "head -c 16000000 /dev/urandom >&2; wait")
    pools(1)
    done = wait_state(db, job, "completed", timeout=60)
    assert len(done["stdout_tail"]) <= 4096 and len(done["stderr_tail"]) <= 4096
    log = subprocess.run([sys.executable, "-m", "queuectl_tui", "logs", job],
                         env=cli_env(db), capture_output=True)
    assert log.returncode == 0 and len(log.stdout) >= 32_000_000


# Runs a command with its stdout in a file, then prints its exit code and the peak
# resident size of the command's process (kB), which only a parent can see.
PEAK_RSS = ("import resource, subprocess, sys\n"
            "with open(sys.argv[1], 'wb') as out:\n"
            "    code = subprocess.run(sys.argv[2:], stdout=out).returncode\n"
            "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")


def logs_peak_kb(db, out, *args: str) -> int:
    """`queuectl logs ARGS` with its output in `out`; its peak RSS in kB."""
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, str(out), sys.executable, "-m",
                           "queuectl_tui", "logs", *args], env=cli_env(db),
                          capture_output=True, text=True, timeout=120)
    code, peak = done.stdout.split()
    assert code == "0", done.stderr
    return int(peak)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_logs_of_a_large_log_take_bounded_memory(db, pools, tmp_path):
    """A 50 MB log is printed whole and byte-exact, by a process that never
    holds more than a few megabytes of it (`logs`, `--attempt`, `--follow`)."""
    small = enqueue(db, "echo small")
    big = enqueue(db, "yes 'a line of output: caf\u00e9 \\x1b[2J' | head -c 50000000")
    pools(1)
    wait_state(db, small, "completed")
    wait_state(db, big, "completed", timeout=60)
    log_files = sorted(Path(db + ".logs").glob("*.log"), key=lambda p: p.stat().st_size)
    assert len(log_files) == 2 and log_files[1].stat().st_size > 50_000_000
    base = logs_peak_kb(db, tmp_path / "small.out", small)
    assert (tmp_path / "small.out").read_bytes() == log_files[0].read_bytes()
    for args in ([big], [big, "--attempt", "1"], [big, "--follow"]):
        out = tmp_path / "big.out"
        peak = logs_peak_kb(db, out, *args)
        assert filecmp.cmp(out, log_files[1], shallow=False), args
        assert peak - base < 12_000, f"{args}: {peak - base} kB above a tiny log's"


def test_workers_exit_when_their_supervisor_dies(db, pools):
    pool = pools(2)
    pids = [w["pid"] for w in pool.wait_ready()]
    os.kill(pool.proc.pid, signal.SIGKILL)
    wait_for(lambda: not any(pid_alive(p) for p in pids), 10,
             message="orphaned workers to exit")


def test_idle_worker_picks_up_a_new_job_quickly(db, pools):
    pool = pools(1)
    pool.wait_ready()
    job = enqueue(db, "true")
    done = wait_state(db, job, "completed")
    from queuectl_tui.clock import parse_iso
    assert parse_iso(done["started_at"]) - parse_iso(done["created_at"]) < 0.5


def test_logs_follow_streams_until_the_job_ends(db, pools):
    job = enqueue(db, "for i in 1 2 3 4; do echo line$i; sleep 0.3; done")
    pools(1)
    wait_state(db, job, "processing")
    follow = run_cli(db, "logs", job, "--follow", timeout=30)
    assert follow.returncode == 0
    assert [l for l in follow.stdout.splitlines() if l.startswith("line")] == \
        ["line1", "line2", "line3", "line4"]


def test_two_hosts_share_a_queue_and_one_is_killed(db, pools, tmp_path):
    """Workers of two hosts on one database; alpha dies with a job, beta rescues it."""
    run_cli(db, "config", "set", "lease-seconds", "2")
    job, alpha, running = start_hanging_job(db, pools, tmp_path, 615, "on-beta",
                                            QUEUECTL_HOSTNAME="alpha")
    assert running["worker_id"].startswith("alpha-")
    beta = pools(1, QUEUECTL_HOSTNAME="beta")
    beta.wait_ready()
    alpha.kill_group()
    done = wait_state(db, job, "completed", timeout=20)
    assert done["worker_id"].startswith("beta-") and done["stdout_tail"] == "on-beta\n"
    hosts = {w["host"]: w["state"] for w in cli_json(db, "worker", "list")}
    assert hosts == {"alpha": "gone", "beta": "idle"}
    # beta cannot reach alpha's processes (another host): clean up the leftover here.
    for pid in procs_running("sleep 615"):
        os.kill(pid, signal.SIGKILL)


def test_repeated_sigterm_stays_graceful_but_a_second_ctrl_c_forces(db, pools):
    job = enqueue(db, "sleep 1.5; echo finished")
    pool = pools(1)
    wait_state(db, job, "processing")
    pool.signal(signal.SIGTERM)
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0
    assert state_of(db, job)["state"] == "completed"
    stuck = enqueue(db, "sleep 616")
    impatient = pools(1)
    wait_state(db, stuck, "processing")
    impatient.signal(signal.SIGINT)
    impatient.wait_for_line("Ctrl+C again")  # signals sent together may merge into one
    impatient.signal(signal.SIGINT)
    assert impatient.wait(30) == 0
    back = state_of(db, stuck)
    assert (back["state"], back["attempts"]) == ("pending", 0), "a forced stop is not the job's fault"
    assert not procs_running("sleep 616"), [open(f"/proc/{p}/cmdline").read() + " pgid=" + str(os.getpgid(p)) for p in procs_running("sleep 616")] + [run_cli(db, "show", stuck).stdout]


def test_workers_are_fresh_interpreters_not_forks(db, pools):
    """No database connection can cross a fork() that never happens."""
    pool = pools(2)
    for worker in pool.wait_ready():
        with open(f"/proc/{worker['pid']}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
        assert b"queuectl_tui.workers.worker" in argv, argv
        with open(f"/proc/{worker['pid']}/stat") as fh:
            assert int(fh.read().rsplit(")", 1)[1].split()[1]) == pool.proc.pid


def test_a_stop_during_start_up_is_not_lost(db):
    """SIGTERM to a pool right after it starts, before its workers are ready."""
    import subprocess as sp
    for _ in range(3):
        pool = sp.Popen([sys.executable, "-m", "queuectl_tui", "worker", "start",
                         "--count", "2"], env=cli_env(db), stdout=sp.DEVNULL,
                        stderr=sp.PIPE, text=True, start_new_session=True)
        try:
            pool.stderr.readline()  # "started 2 worker(s) ..." : the workers are booting
            pool.send_signal(signal.SIGTERM)
            assert pool.wait(30) == 0
        finally:
            if pool.poll() is None:
                os.killpg(pool.pid, signal.SIGKILL)
            pool.stderr.close()


def test_a_worker_dying_between_two_turns_is_replaced_and_its_job_rescued(queue, monkeypatch):
    """The pool once ended ("all workers stopped", exit 0) when its only worker
    died while the supervisor was busy between two polls (a checkpoint, the
    scheduler): the loop's test saw no live child before `_check` had handled
    the death, so nothing replaced the worker and its job stayed `processing`
    (seen in CI as the SIGKILL-rescue test timing out). Here the worker is
    already dead when the loop first looks, the widest form of that window."""
    from queuectl_tui.engine import registry
    from queuectl_tui.engine.jobspec import JobSpec
    from queuectl_tui.workers import supervisor as sup_mod

    monkeypatch.setattr(sup_mod, "FAST_CRASH_S", -1.0)  # restart at once, no back-off
    job = queue.enqueue(JobSpec(command="true"))["id"]
    spawned: list[str] = []

    def spawn(self, crashes: int = 0):
        worker_id = f"w{len(spawned)}"
        spawned.append(worker_id)
        if len(spawned) == 1:  # the first worker takes the job and is SIGKILLed
            registry.register(worker_id, host="h", pid=1, supervisor_pid=os.getpid(),
                              now=queue.clock.now())
            assert queue.claim(worker_id, 60) is not None
            proc = subprocess.Popen(["sh", "-c", "kill -9 $$"])
        else:  # its replacement: the pool is then asked to stop, and it exits
            self.stopping = 1
            proc = subprocess.Popen(["true"])
        proc.wait()
        return sup_mod.Child(worker_id, proc, time.monotonic(), crashes)

    monkeypatch.setattr(sup_mod.Supervisor, "_spawn", spawn)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        assert sup_mod.Supervisor(queue, "unused", 1).run() == 0
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    assert spawned == ["w0", "w1"], "the dead worker was not replaced"
    assert queue.get(job).state != "processing", "the dead worker's job was not rescued"
