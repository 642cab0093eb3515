"""A run's memory limit, enforced: a cgroup of its own, or a resource limit.

The mechanism is chosen once per process (per setting of the two variables
below), best first:

- cgroup v2, when a v2 directory may have child groups with the memory
  controller: the one QUEUECTL_CGROUP names (a delegated directory; `+memory`
  is written to its cgroup.subtree_control if not there yet), else the
  worker's own group if memory is already enabled for its children. Per run a
  group `queuectl-<pid>-<n>` with memory.max, memory.swap.max = 0 and
  memory.oom.group = 1 (an OOM kill ends the whole run, not one process of it).
- cgroup v1, when the worker's group in the memory hierarchy is writable: per
  run a group `queuectl/<pid>-<n>` below it (so any limit above still holds)
  with memory.limit_in_bytes and memory.memsw.limit_in_bytes.
- otherwise RLIMIT_AS through the shell's `ulimit -v`: it bounds each process's
  address space, not the run's total, and a process over it sees an allocation
  fail instead of being killed.

QUEUECTL_MEMORY_LIMIT_BY (cgroup2, cgroup1 or rlimit) forces one; a forced
cgroup that cannot work raises LimitUnavailable, saying why (`check()` at a
pool's start turns a wrong setting into a refusal to start).

The job's shell is started by posix_spawn, so it joins its group itself before
the command runs: `echo $$ > cgroup.procs && exec /bin/sh -c -- command`. If
that write fails the shell applies the rlimit instead, and `finish` sees the
group was never used and says so; a group that cannot be made at all gives the
same fallback. Bookkeeping never fails a job. Only limited runs pay for any of
this: an unlimited run never reaches this module.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import signal
import time
from dataclasses import dataclass

from queuectl_tui.engine import format_size
from queuectl_tui.errors import UsageError

SHELL = "/bin/sh"
CGROUP2, CGROUP1, RLIMIT = "cgroup v2", "cgroup v1", "rlimit"
FORCE_VAR, CGROUP_VAR = "QUEUECTL_MEMORY_LIMIT_BY", "QUEUECTL_CGROUP"
FORCED = {"cgroup2": CGROUP2, "cgroup1": CGROUP1, "rlimit": RLIMIT}
REMOVE_WAIT_S = 2.0  # a group's killed leftovers must exit before it can be removed
OOM_TEXT = re.compile(r"MemoryError|Cannot allocate memory|out of memory|bad_alloc|"
                      r"ENOMEM|memory exhausted", re.IGNORECASE)
# $1 the group's cgroup.procs, $2 the command, $3 the rlimit (KiB) should joining fail
_JOIN = ('{ echo $$ >"$1"; } 2>/dev/null || ulimit -v "$3"; '
         f'exec {SHELL} -c -- "$2"')
_ULIMIT = f'ulimit -v "$1"; exec {SHELL} -c -- "$2"'  # $1 KiB, $2 the command
_ARGV0 = "queuectl-job"


class LimitUnavailable(UsageError):
    """QUEUECTL_MEMORY_LIMIT_BY names a mechanism this machine cannot give."""


@dataclass
class Measured:
    """What `Confinement.finish` found out about a run."""

    by: str  # the mechanism that held the run: cgroup v2, cgroup v1, rlimit
    peak_mem: int | None  # bytes: the group's peak, or None (use the rusage's)
    cpu_s: float | None  # the group's CPU time, or None (use the rusage's)
    oom: str | None  # the error when the run was stopped for its memory
    note: str | None  # why the run fell back to the rlimit


# ------------------------------------------------------------- the cgroup files

def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _field(path: str, key: str) -> int | None:
    """`key N` from a flat-keyed file (memory.events, memory.oom_control, cpu.stat)."""
    for line in (_read(path) or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


def _number(path: str) -> int | None:
    text = (_read(path) or "").strip()
    return int(text) if text.isdigit() else None


def own_groups() -> tuple[str | None, dict[str, str]]:
    """This process's directories: (its v2 group, {v1 controller: its group}),
    from /proc/self/cgroup mapped through the mounts in /proc/self/mountinfo."""
    v2_mount: tuple[str, str] | None = None
    v1_mounts: dict[str, tuple[str, str]] = {}
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, point = fields[3], fields[4].replace("\\040", " ")
        if tail[0] == "cgroup2" and v2_mount is None:
            v2_mount = (root, point)
        elif tail[0] == "cgroup":
            for option in tail[2].split(","):
                v1_mounts.setdefault(option, (root, point))
    v2: str | None = None
    v1: dict[str, str] = {}
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            mount = v2_mount if controller == "" else v1_mounts.get(controller)
            if mount is None:
                continue
            root, point = mount
            rel = os.path.relpath(path, root) if path.startswith(root) else "."
            where = os.path.normpath(os.path.join(point, rel))
            if controller == "":
                v2 = where
            else:
                v1[controller] = where
    return v2, v1


# ------------------------------------------------------------- the mechanisms

class _Rlimit:
    by = RLIMIT

    def start(self, limit: int) -> Confinement:
        return Confinement(self.by, limit, None, None)


class _Cgroup:
    """Child groups below `base` (v1: below base/queuectl)."""

    def __init__(self, by: str, base: str) -> None:
        self.by = by
        self.base = base
        self.v2 = by == CGROUP2
        self.parent = base if self.v2 else os.path.join(base, "queuectl")
        self.prefix = "queuectl-" if self.v2 else ""
        self._numbers = itertools.count(1)
        self._leftovers: list[str] = []  # groups a lingering process kept us from removing

    def start(self, limit: int) -> Confinement:
        self._remove_leftovers()
        try:
            group = self._make()
        except OSError as exc:
            return Confinement(RLIMIT, limit, None, None, f"{self.by} group not made "
                               f"({exc.strerror or exc}), so the rlimit held it")
        try:
            if self.v2:
                _write(os.path.join(group, "memory.max"), str(limit))
                for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                    if os.path.exists(os.path.join(group, name)):
                        _write(os.path.join(group, name), value)
            else:
                _write(os.path.join(group, "memory.limit_in_bytes"), str(limit))
                if os.path.exists(os.path.join(group, "memory.memsw.limit_in_bytes")):
                    _write(os.path.join(group, "memory.memsw.limit_in_bytes"), str(limit))
        except OSError as exc:
            self._remove(group)
            return Confinement(RLIMIT, limit, None, None, f"{self.by} limit not set "
                               f"({exc.strerror or exc}), so the rlimit held it")
        return Confinement(self.by, limit, self, group)

    def _make(self) -> str:
        for _ in range(100):
            if not self.v2:
                os.makedirs(self.parent, exist_ok=True)
            group = os.path.join(self.parent, f"{self.prefix}{os.getpid()}-{next(self._numbers)}")
            try:
                os.mkdir(group)
                return group
            except FileExistsError:
                continue  # a group of a gone worker that had our pid
            except FileNotFoundError:
                continue  # another worker removed the empty parent just now
        raise OSError(errno.EEXIST, f"no free group name in {self.parent}")

    def measure(self, group: str, code: int | None, limit: int) -> Measured:
        if self.v2:
            used = _field(os.path.join(group, "cpu.stat"), "usage_usec")
            peak = _number(os.path.join(group, "memory.peak"))
            kills = _field(os.path.join(group, "memory.events"), "oom_kill")
            cpu = used / 1e6 if used else None
            killed = bool(kills)
        else:
            used = peak = _number(os.path.join(group, "memory.max_usage_in_bytes"))
            kills = _field(os.path.join(group, "memory.oom_control"), "oom_kill")
            cpu = None
            if kills is None:  # kernels before 4.13: a failed charge, then SIGKILL
                kills = _number(os.path.join(group, "memory.failcnt"))
                killed = bool(kills) and code in (-signal.SIGKILL, 128 + signal.SIGKILL)
            else:
                killed = bool(kills)
        if not used:  # the shell could not join it: `ulimit -v` held the run instead
            return Measured(RLIMIT, None, None, None,
                            f"the job's shell could not join its {self.by} group, "
                            "so the rlimit held it")
        oom = None
        if killed and code != 0:
            reached = f", reached {format_size(peak)}" if peak else ""
            oom = f"out of memory: limit {format_size(limit)}{reached} ({self.by})"
        return Measured(self.by, peak or None, cpu, oom, None)

    def release(self, group: str) -> None:
        """Kill what is left in the group and remove it (or keep it for later)."""
        kill = os.path.join(group, "cgroup.kill")
        try:
            if self.v2 and os.path.exists(kill):
                _write(kill, "1")
            else:
                for pid in (_read(os.path.join(group, "cgroup.procs")) or "").split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, PermissionError, ValueError):
                        pass
        except OSError:
            pass
        if not self._remove(group, wait=REMOVE_WAIT_S):
            self._leftovers.append(group)

    def _remove(self, group: str, wait: float = 0.0) -> bool:
        deadline = time.monotonic() + wait
        pause = 0.001
        while True:
            try:
                os.rmdir(group)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                    return False
                time.sleep(pause)  # killed processes take a moment to leave
                pause = min(pause * 2, 0.05)
        if not self.v2:
            try:
                os.rmdir(self.parent)  # the last one out removes queuectl/
            except OSError:
                pass  # another worker's group is in it
        return True

    def _remove_leftovers(self) -> None:
        if self._leftovers:
            self._leftovers = [g for g in self._leftovers if not self._remove(g)]

    def sweep(self) -> None:
        """Remove empty groups left by workers that are gone (killed mid-run)."""
        try:
            names = os.listdir(self.parent)
        except OSError:
            return
        for name in names:
            owner = name.removeprefix(self.prefix).partition("-")[0]
            if not name.startswith(self.prefix) or not owner.isdigit():
                continue
            try:
                os.kill(int(owner), 0)
                continue  # its worker may be using it
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            try:
                os.rmdir(os.path.join(self.parent, name))
            except OSError:
                pass  # still has processes, or not a group of ours


class Confinement:
    """One limited run: the argv that starts it inside its limit, then `finish`."""

    def __init__(self, by: str, limit: int, cgroup: _Cgroup | None, group: str | None,
                 note: str | None = None) -> None:
        self.by = by
        self.limit = limit
        self._cgroup = cgroup
        self.group = group
        self.note = note
        self._kib = str(max(1, limit // 1024))

    def argv(self, command: str) -> list[str]:
        if self.group is None:
            return [SHELL, "-c", _ULIMIT, _ARGV0, self._kib, command]
        return [SHELL, "-c", _JOIN, _ARGV0, os.path.join(self.group, "cgroup.procs"),
                command, self._kib]

    def finish(self, code: int | None, stderr_tail: str) -> Measured:
        """After the shell is reaped: what the run used, whether its memory
        stopped it; the group is removed. Never raises for bookkeeping."""
        if self._cgroup is None or self.group is None:
            return self._rlimit_outcome(code, stderr_tail, self.note)
        try:
            measured = self._cgroup.measure(self.group, code, self.limit)
        finally:
            self._cgroup.release(self.group)
        if measured.by == RLIMIT:
            return self._rlimit_outcome(code, stderr_tail, measured.note)
        return measured

    def _rlimit_outcome(self, code: int | None, stderr_tail: str,
                        note: str | None) -> Measured:
        # no "reached": the limit is on address space, which no counter here sums
        oom = None
        if code not in (0, None) and OOM_TEXT.search(stderr_tail):
            oom = (f"out of memory: limit {format_size(self.limit)} (rlimit: an allocation "
                   "failed under ulimit -v, which bounds each process's address space)")
            if note:
                oom += f"; {note}"
        return Measured(RLIMIT, None, None, oom, note)


# ------------------------------------------------------------- choosing, once

_chosen: dict[tuple[str | None, str | None], _Rlimit | _Cgroup] = {}


def mechanism() -> _Rlimit | _Cgroup:
    """The mechanism this process uses, chosen at the first call (per setting
    of QUEUECTL_MEMORY_LIMIT_BY and QUEUECTL_CGROUP). Raises LimitUnavailable
    when the forced one cannot work."""
    key = (os.environ.get(FORCE_VAR), os.environ.get(CGROUP_VAR))
    found = _chosen.get(key)
    if found is None:
        found = _chosen[key] = _choose(*key)
    return found


def check() -> str:
    """For a pool's start: the mechanism's name ('cgroup v1'), or LimitUnavailable."""
    return mechanism().by


def confine(limit: int) -> Confinement:
    """Start one run's confinement (a group made and limited, or the rlimit)."""
    return mechanism().start(limit)


def _choose(forced: str | None, delegated: str | None) -> _Rlimit | _Cgroup:
    if forced is not None and forced.strip().lower() not in FORCED:
        raise LimitUnavailable(f"{FORCE_VAR}={forced!r}: use cgroup2, cgroup1 or rlimit")
    want = FORCED[forced.strip().lower()] if forced else None
    if want == RLIMIT:
        return _Rlimit()
    v2_dir, v1_dirs = own_groups()
    reasons = []
    if want in (None, CGROUP2):
        base, why = _v2_base(delegated, v2_dir)
        if base is not None:
            found = _Cgroup(CGROUP2, base)
            found.sweep()
            return found
        reasons.append(why)
    if want in (None, CGROUP1):
        base, why = _v1_base(v1_dirs.get("memory"))
        if base is not None:
            found = _Cgroup(CGROUP1, base)
            found.sweep()
            return found
        reasons.append(why)
    if want is not None:
        raise LimitUnavailable(f"{FORCE_VAR}={forced}: {'; '.join(reasons)}")
    return _Rlimit()


def _v2_base(delegated: str | None, own: str | None) -> tuple[str | None, str]:
    where = delegated or own
    if where is None:
        return None, "no cgroup v2 hierarchy is mounted"
    controllers = _read(os.path.join(where, "cgroup.controllers"))
    if controllers is None:
        return None, f"{where} is not a cgroup v2 directory"
    if "memory" not in controllers.split():
        return None, (f"cgroup v2 at {where} has no memory controller for its groups "
                      f"(cgroup.controllers: {controllers.strip() or 'none'})")
    if not os.access(where, os.W_OK):
        return None, f"cgroup v2 at {where} is not writable"
    subtree = os.path.join(where, "cgroup.subtree_control")
    if "memory" not in (_read(subtree) or "").split():
        if not delegated:
            return None, (f"cgroup v2 at {where} holds this process, so its child groups "
                          f"cannot have the memory controller; name a delegated directory "
                          f"in {CGROUP_VAR}")
        try:
            _write(subtree, "+memory")
        except OSError as exc:
            return None, f"cannot enable memory in {subtree}: {exc.strerror or exc}"
    return where, ""


def _v1_base(own: str | None) -> tuple[str | None, str]:
    if own is None:
        return None, "no cgroup v1 memory hierarchy is mounted"
    if not os.path.exists(os.path.join(own, "memory.limit_in_bytes")):
        return None, f"{own} is not a cgroup v1 memory group"
    if not os.access(own, os.W_OK):
        return None, f"cgroup v1 memory group {own} is not writable"
    return own, ""
