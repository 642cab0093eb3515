"""The runner starts jobs with os.posix_spawn; a job must see what Popen gave it.

Popen did several things for us that posix_spawn does not do unasked: stdin
from /dev/null, a new session, SIGPIPE back to its default (Python ignores it),
no inherited file descriptors, the job's directory. Each is checked here on
the runner itself, some in a fresh interpreter where the point is what a
worker process inherits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from queuectl_tui.workers.runner import RunResult, run_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tmp_path: Path):
    def run(command: str, **kw) -> RunResult:
        log = tmp_path / "job.log"
        return run_command(command, timeout=kw.pop("timeout", 30),
                           open_log=lambda: os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT),
                           **kw)
    return run


def test_job_has_devnull_stdin_its_own_session_and_default_signals(run):
    result = run("readlink /proc/$$/fd/0; [ -w /proc/$$/fd/0 ] && echo writable; "
                 "read -r pid comm st ppid pgrp sid rest < /proc/$$/stat; "
                 "[ $pgrp = $$ ] && [ $sid = $$ ] && echo leader; "
                 "grep SigIgn /proc/$$/status; "
                 "(yes; echo yes ended $? >&2) | head -c 1 >/dev/null")
    lines = result.stdout_tail.splitlines()
    assert lines[:3] == ["/dev/null", "writable", "leader"], result
    ignored = int(lines[3].split()[1], 16)
    assert ignored & (1 << (13 - 1) | 1 << (25 - 1)) == 0, "SIGPIPE/SIGXFSZ ignored in the job"
    assert "yes ended 141" in result.stderr_tail  # killed by SIGPIPE, like in a terminal


def test_a_worker_passes_no_file_descriptor_but_0_1_2(tmp_path):
    """A worker started by something that leaked an fd to it (here an inheritable
    pipe) must not leak it on to its jobs: Popen closed it, posix_spawn must too."""
    script = textwrap.dedent(f"""
        import os
        from queuectl_tui.workers.runner import run_command
        leaked = os.pipe()
        for fd in leaked:
            os.set_inheritable(fd, True)
        log = {str(tmp_path / "fds.log")!r}
        r = run_command("ls /proc/$$/fd", timeout=30,
                        open_log=lambda: os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT))
        print(r.stdout_tail.split())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['0', '1', '2']"


def test_job_runs_in_its_directory_and_the_worker_stays_in_its_own(run, tmp_path):
    here = os.getcwd()
    job_dir = tmp_path / "job dir"
    job_dir.mkdir()
    assert run("pwd", cwd=str(job_dir)).stdout_tail == f"{job_dir}\n"
    assert os.getcwd() == here
    assert run("pwd").stdout_tail == f"{here}\n"


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_directory_that_cannot_be_entered_fails_the_job_not_the_worker(run, tmp_path, kind):
    target = tmp_path / "gone"
    if kind == "file":
        target.write_text("")
    started: list[int] = []
    result = run("echo ran", cwd=str(target), on_start=started.append)
    reason = "No such file or directory" if kind == "missing" else "Not a directory"
    assert result.error == f"cannot run in {target}: {reason}"
    assert result.exit_code is None and not started and result.stdout_tail == ""


def test_a_worker_whose_own_directory_was_removed_keeps_running_jobs(tmp_path):
    script = textwrap.dedent(f"""
        import os
        from queuectl_tui.workers.runner import run_command
        home = {str(tmp_path / "home")!r}
        os.mkdir(home)
        os.chdir(home)
        os.rmdir(home)
        log = {str(tmp_path / "x.log")!r}
        opener = lambda: os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        print(run_command("pwd", timeout=30, open_log=opener, cwd="/").stdout_tail.strip())
        r = run_command("stat -L -c %i /proc/$$/cwd", timeout=30, open_log=opener)
        print(int(r.stdout_tail) == os.stat(".").st_ino)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["/", "True"]


def test_job_variables_are_laid_over_the_workers_environment(run):
    result = run('echo "$HOME|$QUEUECTL_JOB_ID|${PATH:+path}"',
                 env={"HOME": "/elsewhere", "QUEUECTL_JOB_ID": "j1"})
    assert result.stdout_tail == "/elsewhere|j1|path\n"
    assert run('echo "$HOME"').stdout_tail == f"{os.environ['HOME']}\n"


def test_a_threaded_caller_is_refused_a_directory_change(run, tmp_path):
    """Entering the job's directory is process-wide: with another thread alive
    it would move that thread too, so the runner refuses instead of racing."""
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        with pytest.raises(RuntimeError, match="single-threaded"):
            run("true", cwd=str(tmp_path))
        assert run("echo fine").stdout_tail == "fine\n"
    finally:
        release.set()
        other.join()


def test_a_leftover_in_the_group_is_killed_after_the_shell_exits(run):
    result = run("sleep 60 & echo $!")
    assert result.exit_code == 0
    leftover = int(result.stdout_tail)
    deadline = time.monotonic() + 5  # SIGKILL is sent before run returns; dying takes a moment
    while not _gone_or_zombie(leftover):
        assert time.monotonic() < deadline, f"leftover {leftover} still running"
        time.sleep(0.01)


def _gone_or_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_without_a_pidfd_the_process_is_still_followed(run, monkeypatch):
    """Kernels before 5.3 have no pidfd: the runner looks at the process itself."""
    monkeypatch.setattr("queuectl_tui.workers.runner._pidfd", lambda pid: None)
    assert run("echo a; echo b >&2").stdout_tail == "a\n"
    closed = run("exec >&- 2>&-; sleep 30", timeout=0.3)
    assert (closed.ended, closed.exit_code) == ("timeout", -15)
