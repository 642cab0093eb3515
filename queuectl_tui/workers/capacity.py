"""What this machine can give a pool: cores, memory and GPU devices.

- cpus: the cores this process may run on (`sched_getaffinity`, which a
  cpuset or `taskset` narrows), not the machine's count.
- mem: /proc/meminfo's MemTotal, or the memory limit of this process's cgroup
  (or of a group above it) when that is lower, as in a container.
- GPUs: QUEUECTL_GPUS ("0,1", or "none") when set; else the devices
  `nvidia-smi -L` lists, asked with a short timeout (a missing or hung driver
  means no GPUs, never a pool that cannot start); else none.

`resolve(text)` lays `--capacity cpu=4,mem=8G,gpu=0,1` over what was detected.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from queuectl_tui.engine import Capacity, parse_capacity, parse_devices
from queuectl_tui.workers.limits import own_groups

GPUS_VAR = "QUEUECTL_GPUS"
NVIDIA_SMI_TIMEOUT_S = 5.0
_GPU_LINE = re.compile(r"GPU (\d+):")
_NO_LIMIT = 1 << 60  # cgroups write "max" or a page-rounded 2**63 for "none"


def detect() -> Capacity:
    return Capacity(float(_cpus()), _memory(), _gpus())


def resolve(text: str | None) -> Capacity:
    """`--capacity` over what was detected; None: what was detected. Bad text
    raises UsageError with a one-line message."""
    return detect() if text is None else parse_capacity(text, detect())


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _memory() -> int:
    total = _meminfo_total()
    limit = _cgroup_limit()
    if limit is not None and (total is None or limit < total):
        return limit
    return total if total is not None else 0


def _meminfo_total() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_limit() -> int | None:
    """The lowest memory limit on this process's group and the groups above it
    (as far as the mount shows them)."""
    v2, v1 = own_groups()
    candidates = []
    if v2 is not None:
        candidates += _walk_up(v2, "memory.max")
    if "memory" in v1:
        candidates += _walk_up(v1["memory"], "memory.limit_in_bytes")
    limits = [n for n in candidates if n < _NO_LIMIT]
    return min(limits) if limits else None


def _walk_up(group: str, name: str) -> list[int]:
    found = []
    while True:
        try:
            with open(os.path.join(group, name)) as f:
                text = f.read().strip()
        except OSError:
            break  # above the hierarchy's mount (or a controller not enabled here)
        if text.isdigit():
            found.append(int(text))
        parent = os.path.dirname(group)
        if parent == group:
            break
        group = parent
    return found


def _gpus() -> tuple[str, ...]:
    given = os.environ.get(GPUS_VAR)
    if given is not None:
        return parse_devices(given, GPUS_VAR)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True,
                                 timeout=NVIDIA_SMI_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ()
    if listing.returncode != 0:
        return ()
    return tuple(m.group(1) for line in listing.stdout.splitlines()
                 if (m := _GPU_LINE.match(line.strip())))
