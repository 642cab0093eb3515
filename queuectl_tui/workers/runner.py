"""Run one job: `/bin/sh -c` in its own session, output captured, timeout enforced.

stdout and stderr are read together through one poll set, so a job that fills
one pipe while we wait on the other cannot deadlock us, and memory stays
bounded whatever the job prints: every chunk goes straight to the job's log
file and only a short tail of each stream is kept.

The shell is started with `os.posix_spawn` rather than `subprocess.Popen`: a
worker starts one process per job, and Popen's Python-level set-up (its error
pipe, the fd-closing walk, the environment copied and encoded every time, an
epoll selector per run) cost about as much CPU as the worker's database work
(bench/blackbox.py). What Popen did for us is done here explicitly: a new
session (`setsid`), stdin from /dev/null, stdout and stderr into fresh pipes,
SIGPIPE and SIGXFSZ back to their defaults (Python ignores SIGPIPE; a job must
not inherit that), and the job's directory (see `_Spawner`).
"""

from __future__ import annotations

import fcntl
import os
import resource
import select
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from queuectl_tui.engine import TAIL_CHARS, decode_tail
from queuectl_tui.workers import limits
from queuectl_tui.workers.steering import (Abort, Control, Deadline, begin_stop, kill_group,
                                           steer)

CHUNK = 65536
TAIL_BYTES = TAIL_CHARS * 4
DRAIN_AFTER_EXIT_S = 0.2  # a background child may hold the pipes; don't wait for it
SHELL = "/bin/sh"
READABLE = select.POLLIN | select.POLLHUP | select.POLLERR


@dataclass
class RunResult:
    exit_code: int | None
    error: str | None  # None means success
    stdout_tail: str
    stderr_tail: str
    ended: str = "exit"  # exit, timeout, cancelled, stopped, lost, oom (engine/attempts.py)
    log_offset: int | None = None  # where this run's output starts in the log
    stdout_bytes: int = 0  # all it printed, of which the tails are the end
    stderr_bytes: int = 0
    peak_mem: int | None = None  # bytes: its group's peak, else the largest process's RSS
    cpu_s: float | None = None  # user + system seconds of the shell and what it waited for
    mem_limit_by: str | None = None  # cgroup v2, cgroup v1, rlimit; None: no memory limit
    limit_note: str | None = None  # why a limited run fell back to the rlimit
    paused_s: float = 0.0  # seconds its process group spent stopped (Control.stopped)


class OutputWatch(Protocol):
    """Something that reads a run's output as it comes (workers/progress.py):
    `feed` gets every chunk of stdout (stream 1) and stderr (2); `wake` is
    called once monotonic time reaches `due` (None: nothing to do then)."""

    due: float | None

    def feed(self, stream: int, chunk: bytes) -> None: ...

    def wake(self) -> None: ...


class _Tail:
    def __init__(self) -> None:
        self.data = bytearray()
        self.seen = 0  # bytes in all, kept or not

    def add(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        self.data += chunk
        if len(self.data) > 2 * TAIL_BYTES:
            del self.data[:-TAIL_BYTES]

    def text(self) -> str:
        return decode_tail(bytes(self.data))


class _SpawnFailed(Exception):
    """The job's directory could not be entered: the job fails, the worker does not."""


def run_command(command: str, *, timeout: float | None,
                open_log: Callable[[], int] | None, log_header: bytes = b"",
                on_start: Callable[[int], None] = lambda pid: None,
                tick: Callable[[], Control | Abort | None] = lambda: None,
                first_tick: float = 1.0,
                tick_every: float = 1.0, env: dict[str, str] | None = None,
                cwd: str | None = None, mem_limit: int | None = None,
                watch: OutputWatch | None = None) -> RunResult:
    """Run `command` to the end; `tick` is called periodically and may ask to
    abort (an Abort), or to stop or continue the run or move its timeout (a
    Control).

    An abort (cancelled, stopped, claim lost, snoozed) and the timeout end the
    whole process group the same way: SIGTERM, then SIGKILL after a grace
    period, during which output is still read and `tick` still called (so the
    lease is kept while a job shuts down). A stopped group (SIGSTOP, a pause)
    is continued right after its SIGTERM, so it can end cleanly; its timeout's
    clock does not run while it is stopped. When the timeout comes, `tick` is
    asked once more first: the job may have extended it, or been paused, since
    the last tick.
    The loop follows the process, not its pipes: a job that closes stdout and
    stderr (`exec >/dev/null 2>&1`) still has its lease renewed and its timeout
    enforced, because the process's exit is watched through a pidfd.
    The shell is reaped only after its group has been killed, so the group id
    cannot have been reused by an unrelated process when we signal it.
    `open_log=None` keeps only the tails (a finish hook's output: workers/services/hooks.py).
    `mem_limit` (bytes) is enforced (workers/limits.py): a run over it ends "oom".
    Every run reports its peak memory and CPU time (from wait4's rusage, or
    its group's counters when it has one). `watch` sees the output as it is read.
    """
    confinement: limits.Confinement | None = None
    measured: limits.Measured | None = None
    if mem_limit is None:
        argv = [SHELL, "-c", "--", command]  # "--": a command starting with "-" is a command
    else:
        try:
            confinement = limits.confine(mem_limit)
        except limits.LimitUnavailable as exc:
            return RunResult(exit_code=None, error=str(exc), stdout_tail="", stderr_tail="")
        argv = confinement.argv(command)
    out_r, out_w = _pipe()
    err_r, err_w = _pipe()
    try:
        pid = _spawner.spawn(argv, out_w, err_w, env, cwd)
    except BaseException as exc:
        os.close(out_r)
        os.close(err_r)
        if confinement is not None:
            confinement.finish(None, "")  # removes its group
        if isinstance(exc, _SpawnFailed):
            return RunResult(exit_code=None, error=str(exc), stdout_tail="", stderr_tail="")
        raise
    finally:
        os.close(out_w)  # the job has its own copies; ours would keep the pipes open
        os.close(err_w)
    output = _Output(open_log, log_header, {out_r: _Tail(), err_r: _Tail()},
                     None if watch is None else (watch, {out_r: 1, err_r: 2}))
    exit_fd: int | None = None
    abort: Abort | None = None
    clock = Deadline(time.monotonic(), timeout)
    try:
        on_start(pid)
        poller = select.poll()
        for fd in output.tails:
            poller.register(fd, READABLE)
        exit_fd = _pidfd(pid)
        if exit_fd is not None:
            poller.register(exit_fd, select.POLLIN)
        looked_at: float | None = None  # the deadline `tick` was asked about once more
        next_tick = clock.start + first_tick
        exited_at: float | None = None
        kill_at: float | None = None
        may_have_exited = exit_fd is None  # without a pidfd: look every turn
        while True:
            now = time.monotonic()
            if exited_at is None and may_have_exited and _has_exited(pid):
                exited_at = now
                if exit_fd is not None:
                    poller.unregister(exit_fd)  # stays readable: stop waking on it
            if exited_at is not None and (not output.open
                                          or now >= exited_at + DRAIN_AFTER_EXIT_S):
                break  # the shell is done; leftovers holding the pipes are killed below
            if exited_at is None:
                if kill_at is not None and now >= kill_at:
                    kill_group(pid)
                    kill_at = None
                due = clock.due()
                if abort is None and due is not None and now >= due and looked_at != due:
                    looked_at, next_tick = due, now  # extended or paused meanwhile?
                if now >= next_tick:
                    next_tick = now + tick_every
                    asked = tick()
                    control = asked if isinstance(asked, Control) else Control(abort=asked)
                    if abort is None:
                        abort = steer(pid, control, clock, now)
                        if abort is not None:
                            kill_at = begin_stop(pid, abort, clock, now)
                due = clock.due()
                if abort is None and due is not None and now >= due:
                    abort = Abort("timeout", clock.timed_out())
                    kill_at = begin_stop(pid, abort, clock, now)
            wait = next_tick - now
            due = clock.due()
            if due is not None and exited_at is None and abort is None:
                wait = min(wait, due - now)
            if kill_at is not None:
                wait = min(wait, kill_at - now)
            if exited_at is not None:
                wait = min(wait, exited_at + DRAIN_AFTER_EXIT_S - now)
            elif exit_fd is None:
                wait = min(wait, 0.05)  # no pidfd: look at the process often
            if watch is not None and watch.due is not None:
                if now >= watch.due:
                    watch.wake()
                if watch.due is not None:
                    wait = min(wait, watch.due - now)
            for fd, _ in poller.poll(max(0.0, min(wait, 0.5)) * 1000):
                if fd == exit_fd:
                    may_have_exited = True
                elif not output.read(fd):
                    poller.unregister(fd)
    finally:
        kill_group(pid)  # nothing the job started outlives it; the zombie holds the id
        clock.cont(time.monotonic())
        _, status, usage = os.wait4(pid, 0)  # its rusage covers what the shell waited for
        code = os.waitstatus_to_exitcode(status)
        if exit_fd is not None:
            os.close(exit_fd)
        for fd in output.tails:
            os.close(fd)
        output.close()
        if confinement is not None:  # its group goes now, whatever ended the run
            measured = confinement.finish(code, output.tails[err_r].text())
    out, err = (t.text() for t in output.tails.values())
    extra = {"stdout_bytes": output.tails[out_r].seen, "stderr_bytes": output.tails[err_r].seen,
             "peak_mem": _peak_rss(usage), "cpu_s": usage.ru_utime + usage.ru_stime,
             "paused_s": clock.paused}
    oom = None
    if measured is not None:
        oom = measured.oom
        extra["mem_limit_by"], extra["limit_note"] = measured.by, measured.note
        if measured.peak_mem is not None:
            extra["peak_mem"] = measured.peak_mem
        if measured.cpu_s is not None:
            extra["cpu_s"] = measured.cpu_s
    if output.log_error:
        sep = "\n" if err and not err.endswith("\n") else ""
        err += f"{sep}[queuectl: output not saved to the log: {output.log_error}]\n"
    if abort is not None:
        return RunResult(exit_code=code, error=abort.message, stdout_tail=out, stderr_tail=err,
                         ended=abort.ended, log_offset=output.log_offset, **extra)
    if oom is not None:
        return RunResult(exit_code=code, error=oom, stdout_tail=out, stderr_tail=err,
                         ended="oom", log_offset=output.log_offset, **extra)
    return RunResult(exit_code=code, error=describe_exit(code, err), stdout_tail=out,
                     stderr_tail=err, log_offset=output.log_offset, **extra)


def _peak_rss(usage: resource.struct_rusage) -> int | None:
    """The largest RSS among the shell and what it waited for, in bytes, when
    known. The kernel folds the peak RSS of the memory a process was started
    from into its own at exec, and posix_spawn starts the shell from the
    worker's memory (vfork), so a run's figure is never below the worker's own
    peak: a figure above it is the run's, one at or below it says only "no
    more than the worker", which is reported as unknown (None). A run with a
    cgroup reports the group's peak instead, which has no such floor.
    The worker's peak is asked for only when a figure is above the last one
    seen (it only grows), so most runs make no extra system call."""
    global _worker_peak
    if usage.ru_maxrss <= _worker_peak:
        return None
    _worker_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage.ru_maxrss * 1024 if usage.ru_maxrss > _worker_peak else None  # KiB


_worker_peak = 0  # KiB: this process's peak RSS when last asked


def _has_exited(pid: int) -> bool:
    """Whether the shell has exited, without reaping it (WNOWAIT): while it is a
    zombie its pid, and so its process group id, cannot be given to anyone else."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


class _Output:
    """Where a run's output goes: a bounded tail per stream, and the log file.

    The log is opened at the first byte (most jobs print nothing). If it cannot
    be written (a full disk, an unwritable folder) the job keeps running and
    keeps its tails; the reason is reported with the result instead of
    crashing the worker.
    """

    def __init__(self, open_log: Callable[[], int] | None, header: bytes,
                 tails: dict[int, _Tail],
                 watch: tuple[OutputWatch, dict[int, int]] | None = None) -> None:
        self._open_log = open_log
        self._watch = watch
        self._header = header
        self.tails = tails
        self.log_fd: int | None = None
        self.log_error: str | None = None
        self.log_offset: int | None = None  # where this run's header starts
        self.open = set(tails)  # pipes not yet at end of file

    def read(self, fd: int) -> bool:
        """Read what `fd` has; False once it is at end of file.

        The pipes stay blocking (O_NONBLOCK would be shared with the job's
        write ends): we read only when poll said the pipe has data or no
        writer, and nobody else reads it, so the read never waits.
        """
        chunk = os.read(fd, CHUNK)
        if not chunk:
            self.open.discard(fd)
            return False
        self.tails[fd].add(chunk)
        self._write(chunk)
        if self._watch is not None:
            self._watch[0].feed(self._watch[1][fd], chunk)
        return True

    def _write(self, chunk: bytes) -> None:
        if self.log_error is not None or self._open_log is None:
            return
        try:
            if self.log_fd is None:
                self.log_fd = self._open_log()
                self.log_offset = os.lseek(self.log_fd, 0, os.SEEK_END)
                os.write(self.log_fd, self._header)
            os.write(self.log_fd, chunk)
        except OSError as exc:
            self.log_error = exc.strerror or str(exc)

    def close(self) -> None:
        if self.log_fd is not None:
            os.close(self.log_fd)


def _pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when `pid` exits (Linux 5.3+)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def describe_exit(code: int, stderr_tail: str) -> str | None:
    """None for success; otherwise one line saying why, with the last stderr line."""
    if code == 0:
        return None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        what = f"killed by {name}"
    elif code == 127:
        what = "exit code 127 (command not found)"
    elif code == 126:
        what = "exit code 126 (not executable)"
    else:
        what = f"exit code {code}"
    last = next((line.strip() for line in reversed(stderr_tail.splitlines()) if line.strip()), "")
    return f"{what}: {last[:300]}" if last else what


# ---------------------------------------------------------------------- spawning

def _pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()  # both close-on-exec: the job gets only its dup2 copies
    return _above_stdio(read_end), _above_stdio(write_end)


def _above_stdio(fd: int) -> int:
    """`fd`, moved above 2 if it is 0, 1 or 2: in a process started with one of
    those closed, the dup2 actions onto 0, 1 and 2 would otherwise clobber it."""
    if fd > 2:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved


class _Spawner:
    """Starts job shells with `os.posix_spawn`; what every spawn shares is
    prepared once per process, at the first job.

    - /dev/null for stdin, opened once (read-write, as subprocess.DEVNULL is).
    - The environment: a worker never changes its own, so it is read and
      encoded once; each job's variables are laid over it.
    - File descriptors: Popen closed every fd above 2 in the child. posix_spawn
      closes only close-on-exec ones, which is every fd Python, SQLite, libpq
      and our inotify make; what the worker itself inherited without that flag
      gets it here, once. On Python 3.13+ the child also closes the rest itself.
    - Signals: Python ignores SIGPIPE (and SIGXFSZ); ignored signals survive
      exec, so they are reset to their defaults in the child, as Popen did.
      (glibc's posix_spawn leaves its two internal signals, 32 and 33, ignored
      in the child; glibc programs cannot see those, and others rarely use them.)
    - The directory: posix_spawn has no directory argument (glibc's addchdir
      action is not exposed by any Python yet), so the worker enters the job's
      directory for the duration of the call and goes back through an fd on its
      own, which works even if that was removed. Two system calls, and the
      command sees exactly what Popen(cwd=...) gave it: the same directory,
      environment and argv, no extra shell in between. This is only safe with
      one thread, which a worker is: a threaded caller gets an error, not a race.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a supervisor runs finish hooks from several threads
        self._devnull = -1
        self._home = -1
        self._base_env: dict[bytes, bytes] = {}
        self._ready = False

    def _prepare(self) -> None:
        for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
            try:
                if int(name) > 2 and os.get_inheritable(int(name)):
                    os.set_inheritable(int(name), False)
            except OSError:
                pass  # the listing's own fd, gone by now
        self._devnull = _above_stdio(os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC))
        self._home = os.open(".", getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY
                             | os.O_CLOEXEC)
        self._base_env = dict(os.environb)
        self._ready = True

    def spawn(self, argv: list[str], out_w: int, err_w: int, env: dict[str, str] | None,
              cwd: str | None) -> int:
        """Start `argv` (a /bin/sh) in a new session; returns its pid.

        Raises _SpawnFailed if `cwd` cannot be entered."""
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self._prepare()
        job_env = self._base_env if not env else \
            {**self._base_env, **{os.fsencode(k): os.fsencode(v) for k, v in env.items()}}
        actions = [(os.POSIX_SPAWN_DUP2, self._devnull, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                   (os.POSIX_SPAWN_DUP2, err_w, 2), *_CLOSE_THE_REST]
        if cwd is None:
            return os.posix_spawn(SHELL, argv, job_env, file_actions=actions, setsid=True,
                                  setsigdef=_RESET_SIGNALS)
        if threading.active_count() > 1:
            raise RuntimeError("run_command enters the job's directory around the spawn; "
                               "it must be called from a single-threaded process")
        try:
            os.chdir(cwd)
        except OSError as exc:
            raise _SpawnFailed(f"cannot run in {cwd}: {exc.strerror}") from None
        try:
            return os.posix_spawn(SHELL, argv, job_env, file_actions=actions, setsid=True,
                                  setsigdef=_RESET_SIGNALS)
        finally:
            os.fchdir(self._home)


_CLOSE_THE_REST = [(os.POSIX_SPAWN_CLOSEFROM, 3)] if hasattr(os, "POSIX_SPAWN_CLOSEFROM") else []
_RESET_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ")
                       if hasattr(signal, name))
_spawner = _Spawner()
