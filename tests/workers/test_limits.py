"""A run's memory limit is enforced, and every run's usage is recorded.

Real processes throughout: a Python that allocates and touches 200 MB under a
50M limit must end "oom", under the mechanism this machine picks by itself and
under each one forced (QUEUECTL_MEMORY_LIMIT_BY). A cgroup mechanism this
machine cannot give is skipped with the reason, so the file passes anywhere.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

from queuectl_tui.errors import UsageError
from queuectl_tui.workers import limits
from queuectl_tui.workers.runner import SHELL, RunResult, run_command

M = 1 << 20
HOG = f"{sys.executable} -c 'b = bytearray(200 * 2**20); b[::4096] = b\"x\" * len(b[::4096])'"
BURN = (f"{sys.executable} -c 'import time\n"
        "while time.process_time() < 0.2: pass'")


@pytest.fixture(autouse=True)
def default_mechanism(monkeypatch):
    monkeypatch.delenv(limits.FORCE_VAR, raising=False)
    monkeypatch.delenv(limits.CGROUP_VAR, raising=False)


def run(command: str, **kw) -> RunResult:
    return run_command(command, timeout=kw.pop("timeout", 60), open_log=None, **kw)


def force(monkeypatch, name: str) -> str:
    """Force a mechanism; skip when this machine cannot give it (saying why)."""
    monkeypatch.setenv(limits.FORCE_VAR, name)
    try:
        return limits.check()
    except limits.LimitUnavailable as exc:
        pytest.skip(str(exc))


def our_groups() -> list[str]:
    """Groups of this process left in the chosen mechanism's directory."""
    found = limits.mechanism()
    if not isinstance(found, limits._Cgroup):
        return []
    try:
        names = os.listdir(found.parent)
    except FileNotFoundError:
        return []
    mine = f"{found.prefix}{os.getpid()}-"
    return [name for name in names if name.startswith(mine)]


def assert_oom(result: RunResult, by: str) -> None:
    assert result.ended == "oom", result
    assert result.mem_limit_by == by, result
    assert result.exit_code not in (0, None), result
    if by == limits.RLIMIT:
        assert result.error.startswith(
            "out of memory: limit 50M (rlimit: an allocation failed under ulimit -v, which "
            "bounds each process's address space)"), result.error
        assert "MemoryError" in result.stderr_tail, result
    else:
        assert re.fullmatch(rf"out of memory: limit 50M(, reached [0-9.]+M)? \({by}\)",
                            result.error), result.error
        assert result.peak_mem and 40 * M <= result.peak_mem <= 50 * M, result
    assert result.cpu_s is not None and result.cpu_s > 0, result


@pytest.mark.parametrize("name", [None, "cgroup2", "cgroup1", "rlimit"])
def test_a_run_over_its_memory_ends_oom(monkeypatch, name):
    by = force(monkeypatch, name) if name else limits.check()
    result = run(HOG, mem_limit=50 * M)
    assert_oom(result, by)
    assert our_groups() == []


@pytest.mark.parametrize("name", ["cgroup2", "cgroup1"])
def test_a_limited_run_is_in_a_group_of_its_own_and_nothing_it_started_outlives_it(
        monkeypatch, name):
    by = force(monkeypatch, name)
    # the background sleep leaves the job's session: killing the process group
    # misses it, the group's removal must not
    result = run('cat /proc/self/cgroup; setsid sleep 1000 </dev/null >/dev/null 2>&1 & '
                 'echo "pid $!"', mem_limit=64 * M)
    assert result.exit_code == 0 and result.mem_limit_by == by, result
    lines = result.stdout_tail.splitlines()
    groups = [line for line in lines if ("::" if by == limits.CGROUP2 else ":memory:") in line]
    assert re.search(r"/queuectl[-/]\d+-\d+$", groups[0]), lines
    pid = int(lines[-1].split()[1])
    deadline = time.monotonic() + 10
    while alive(pid):
        assert time.monotonic() < deadline, f"the job's background process {pid} outlived it"
        time.sleep(0.01)
    assert our_groups() == []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_run_within_its_limit_succeeds_and_records_its_usage(monkeypatch):
    by = limits.check()
    # 120M: above this test process's own peak, so known under the rlimit too
    result = run(HOG.replace("200", "120"), mem_limit=256 * M)
    assert result.exit_code == 0 and result.error is None and result.ended == "exit", result
    assert result.mem_limit_by == by and result.limit_note is None, result
    assert 120 * M <= result.peak_mem < 256 * M, result


def test_a_normal_run_records_peak_memory_and_cpu_time():
    burn = run(BURN)
    assert burn.exit_code == 0 and burn.mem_limit_by is None, burn
    assert 0.1 < burn.cpu_s < 5, burn
    # Above this process's own peak (a long test session's grows), or the
    # figure is unknown by design (below): 200 MB more than that.
    import resource
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    size = own + 200 * M
    hog = run(HOG.replace("200 * 2**20", str(size)))
    assert hog.exit_code == 0, hog
    assert hog.peak_mem is not None and hog.peak_mem >= size, hog  # reaped by the shell
    idle = run("true")
    assert idle.cpu_s is not None and idle.cpu_s < 0.5, idle
    # below this process's own peak RSS, which the kernel folds into the shell's
    # at its exec (runner._peak_rss): not known, rather than this process's figure
    assert idle.peak_mem is None, idle


def test_a_limited_run_counts_cpu_time_too(monkeypatch):
    limits.check()
    result = run(BURN, mem_limit=256 * M)
    assert result.exit_code == 0, result
    assert 0.1 < result.cpu_s < 5, result


def test_an_unlimited_run_is_still_plain_sh_c():
    command = "tr '\\0' '\\n' </proc/$$/cmdline; echo ppid $PPID; cat /proc/$$/cgroup"
    result = run(command)
    lines = result.stdout_tail.splitlines()
    assert lines[:4] == [SHELL, "-c", "--", command], lines
    assert lines[4] == f"ppid {os.getpid()}", lines  # no shell in between
    assert lines[5:] == Path("/proc/self/cgroup").read_text().splitlines()  # no group of its own


def test_a_limited_run_sees_the_same_command_and_arguments(monkeypatch, tmp_path):
    """The extra exec changes nothing the command sees: $0, $@, cwd, env, stdin."""
    limits.check()
    result = run('echo "$0|$#|$(pwd)|$QX"; readlink /proc/$$/fd/0',
                 mem_limit=64 * M, cwd=str(tmp_path), env={"QX": "a b"})
    assert result.stdout_tail.splitlines() == [f"{SHELL}|0|{tmp_path}|a b", "/dev/null"], result
    dash = run("-x 2>/dev/null; echo ran", mem_limit=64 * M)  # a command, not an option
    assert dash.stdout_tail == "ran\n", dash


@pytest.mark.parametrize("name", ["cgroup2", "cgroup1"])
def test_a_group_that_cannot_be_made_falls_back_to_the_rlimit(monkeypatch, name):
    by = force(monkeypatch, name)

    def refused(path, value):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(limits, "_write", refused)
    result = run(HOG, mem_limit=50 * M)
    assert_oom(result, limits.RLIMIT)
    assert result.limit_note == f"{by} limit not set (Permission denied), so the rlimit held it"
    assert result.error.endswith(f"; {result.limit_note}")
    monkeypatch.undo()
    force(monkeypatch, name)
    assert our_groups() == []


@pytest.mark.parametrize("name", ["cgroup2", "cgroup1"])
def test_a_shell_that_cannot_join_its_group_runs_under_the_rlimit(monkeypatch, name):
    by = force(monkeypatch, name)
    argv = limits.Confinement.argv

    def unjoinable(self, command):
        line = argv(self, command)
        line[4] = "/proc/nonexistent/cgroup.procs"
        return line

    monkeypatch.setattr(limits.Confinement, "argv", unjoinable)
    result = run(HOG, mem_limit=50 * M)
    assert_oom(result, limits.RLIMIT)
    assert result.limit_note == (f"the job's shell could not join its {by} group, "
                                 "so the rlimit held it")
    assert our_groups() == []


def test_a_timed_out_limited_run_ends_timeout_and_leaves_no_group(monkeypatch):
    limits.check()
    result = run("echo started; exec sleep 30", mem_limit=64 * M, timeout=0.5)
    assert result.ended == "timeout" and result.stdout_tail == "started\n", result
    assert our_groups() == []


def test_a_failure_that_is_not_memory_is_not_oom(monkeypatch):
    for name in ("rlimit", None):
        if name:
            force(monkeypatch, name)
        result = run("echo 'no such file' >&2; exit 3", mem_limit=64 * M)
        assert result.ended == "exit" and result.error == "exit code 3: no such file", result
        said = run("echo 'out of memory, says a test' >&2; exit 0", mem_limit=64 * M)
        assert said.ended == "exit" and said.error is None, said


def test_a_forced_mechanism_that_cannot_work_says_why(monkeypatch):
    monkeypatch.setenv(limits.FORCE_VAR, "cgroup3")
    with pytest.raises(UsageError, match=r"QUEUECTL_MEMORY_LIMIT_BY='cgroup3': use cgroup2, "
                                         r"cgroup1 or rlimit"):
        limits.check()
    result = run("echo never", mem_limit=64 * M)
    assert result.exit_code is None and result.stdout_tail == "", result
    assert result.error.startswith("QUEUECTL_MEMORY_LIMIT_BY='cgroup3'"), result
    monkeypatch.setenv(limits.FORCE_VAR, "cgroup2")
    monkeypatch.setenv(limits.CGROUP_VAR, "/proc/nonexistent")
    with pytest.raises(limits.LimitUnavailable,
                       match=r"cgroup2: /proc/nonexistent is not a cgroup v2 directory"):
        limits.check()
    assert run("true").exit_code == 0  # an unlimited run never asks
