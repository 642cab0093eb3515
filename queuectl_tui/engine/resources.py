"""What a job needs (cpus, memory, GPUs) and what a pool can give, in one vocabulary.

A job that states no needs needs nothing: capacity only admits jobs that say
what they use, so a pool of 8 workers on 2 cores still runs 8 `true` jobs at
once, as before capacities existed. GPUs are devices, not a number: a pool
holds a list of device ids and a job is handed particular ones
(`CUDA_VISIBLE_DEVICES`), so two jobs never share a device.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from queuectl_tui.errors import UsageError

MAX_CPUS = 4096.0
MAX_MEM = 1 << 50  # 1 PiB: bounds a typo, not a machine
MAX_GPUS = 64
MIN_MEM = 1 << 20  # below 1 MiB no shell starts: a limit that small is a mistake
KEY = re.compile(r"[^\x00-\x1f\x7f]{1,255}")
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(i?b?)\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
DEVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def parse_size(value: Any, what: str = "mem") -> int:
    """'512M', '16G', '1.5g', '1048576' (bytes) or a JSON number of bytes.
    Units are binary (K = 1024), as `free -h` and cgroups count."""
    if isinstance(value, bool):
        raise UsageError(f"{what} must be a size such as 512M or 16G, got {json.dumps(value)}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value)):
        number, unit = float(match.group(1)), match.group(2).lower()
    else:
        raise UsageError(f"{what} must be a size such as 512M or 16G, got "
                         f"{json.dumps(value)[:40]}")
    size = number * _UNITS[unit]
    if not math.isfinite(size) or not MIN_MEM <= size <= MAX_MEM:
        raise UsageError(f"{what} must be between 1M and 1P, got {json.dumps(value)[:40]}")
    return int(size)


def format_size(size: int | None) -> str:
    """Bytes as a person reads them: 512M, 1.5G (binary units, as parse_size)."""
    if size is None:
        return "-"
    if size == 0:
        return "0"
    for unit in ("P", "T", "G", "M", "K"):
        scale = _UNITS[unit.lower()]
        if size >= scale:
            text = f"{size / scale:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{size}B"


def check_cpus(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0 < value <= MAX_CPUS:
        raise UsageError(f"cpus must be a number of cores above 0 and at most {MAX_CPUS:g}, "
                         f"got {json.dumps(value)[:40]}")
    return float(value)


def check_gpus(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GPUS:
        raise UsageError(f"gpus must be a whole number of devices from 0 to {MAX_GPUS}, "
                         f"got {json.dumps(value)[:40]}")
    return value


def check_key(value: Any) -> str:
    """A job's key for per-key limits: a customer, a host, an API."""
    if not isinstance(value, str) or not KEY.fullmatch(value):
        raise UsageError("key must be 1-255 characters of text without control characters, "
                         f"got {json.dumps(value)[:60]}")
    return value


@dataclass(frozen=True)
class Needs:
    """What one job needs; zeros are 'nothing stated'."""

    cpus: float = 0.0
    mem: int = 0
    gpus: int = 0

    def __bool__(self) -> bool:
        return bool(self.cpus or self.mem or self.gpus)

    def describe(self) -> str:
        parts = []
        if self.cpus:
            parts.append(f"{self.cpus:g} cpu{'s' if self.cpus != 1 else ''}")
        if self.mem:
            parts.append(f"{format_size(self.mem)} memory")
        if self.gpus:
            parts.append(f"{self.gpus} GPU{'s' if self.gpus != 1 else ''}")
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True)
class Capacity:
    """What one pool can give at once: cores, bytes of memory and GPU device ids."""

    cpus: float
    mem: int
    gpus: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps({"cpus": self.cpus, "mem": self.mem, "gpus": list(self.gpus)})

    @classmethod
    def from_json(cls, text: str | None) -> Capacity | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(float(data["cpus"]), int(data["mem"]), tuple(map(str, data["gpus"])))
        except (ValueError, KeyError, TypeError):
            return None

    def free_after(self, cpus: float, mem: int, devices: set[str]) -> tuple[float, int, list[str]]:
        """What is left once running jobs hold `cpus`, `mem` and `devices`."""
        return self.cpus - cpus, self.mem - mem, [d for d in self.gpus if d not in devices]

    def covers(self, needs: Needs) -> bool:
        return needs.cpus <= self.cpus and needs.mem <= self.mem and needs.gpus <= len(self.gpus)

    def describe(self) -> str:
        gpus = ",".join(self.gpus) if self.gpus else "none"
        return f"cpu={self.cpus:g} mem={format_size(self.mem)} gpu={gpus}"


def parse_capacity(text: str, detected: Capacity) -> Capacity:
    """'cpu=4,mem=8G,gpu=0,1' over what was detected: names not given keep the
    detected value. `gpu=` takes device ids (the ids after it up to the next
    name=); `gpu=none` says the pool has none."""
    values: dict[str, list[str]] = {}
    current: str | None = None
    for part in (p.strip() for p in text.split(",")):
        if "=" in part:
            current, _, first = part.partition("=")
            current = current.strip().lower()
            if current not in ("cpu", "mem", "gpu"):
                raise UsageError(f"--capacity: unknown resource {current!r}; use cpu=N, "
                                 "mem=SIZE and gpu=IDS, e.g. cpu=4,mem=8G,gpu=0,1")
            if current in values:
                raise UsageError(f"--capacity names {current} twice")
            values[current] = [first.strip()] if first.strip() else []
        elif current == "gpu" and part:
            values["gpu"].append(part)
        elif part:
            raise UsageError(f"--capacity: {part!r} is not NAME=VALUE; e.g. cpu=4,mem=8G,gpu=0,1")
    cpus, mem, gpus = detected.cpus, detected.mem, detected.gpus
    if "cpu" in values:
        if len(values["cpu"]) != 1:
            raise UsageError("--capacity: cpu needs one number, e.g. cpu=4")
        cpus = check_cpus(values["cpu"][0])
    if "mem" in values:
        if len(values["mem"]) != 1:
            raise UsageError("--capacity: mem needs one size, e.g. mem=8G")
        mem = parse_size(values["mem"][0], "--capacity mem")
    if "gpu" in values:
        gpus = parse_devices(",".join(values["gpu"]), "--capacity gpu")
    return Capacity(cpus, mem, gpus)


def parse_devices(text: str, what: str) -> tuple[str, ...]:
    """'0,1' -> ('0', '1'); 'none' or '' -> (); ids as CUDA_VISIBLE_DEVICES takes them."""
    if text.strip().lower() in ("", "none"):
        return ()
    ids = [part.strip() for part in text.split(",")]
    for device in ids:
        if not DEVICE.fullmatch(device):
            raise UsageError(f"{what}: {device[:40]!r} is not a device id (e.g. 0,1 or GPU-uuid)")
    if len(ids) > MAX_GPUS:
        raise UsageError(f"{what}: {len(ids)} devices; at most {MAX_GPUS}")
    if len(set(ids)) != len(ids):
        raise UsageError(f"{what} names a device twice")
    return tuple(ids)


def why_never(needs: Needs, pools: list[Capacity]) -> str | None:
    """Why no live pool could ever run a job with these needs (None: one could,
    or no pool is running, which says nothing yet)."""
    if not needs or not pools or any(pool.covers(needs) for pool in pools):
        return None
    if needs.gpus > max(len(p.gpus) for p in pools):
        most = max(len(p.gpus) for p in pools)
        return (f"needs {needs.gpus} GPU{'s' if needs.gpus != 1 else ''}; the largest pool "
                f"has {most}")
    if needs.mem > max(p.mem for p in pools):
        return (f"needs {format_size(needs.mem)} memory; the largest pool has "
                f"{format_size(max(p.mem for p in pools))}")
    if needs.cpus > max(p.cpus for p in pools):
        return f"needs {needs.cpus:g} cpus; the largest pool has {max(p.cpus for p in pools):g}"
    return f"needs {needs.describe()}; no single pool has all of it"
