"""What a pool can give: detected (cores, memory, GPUs) and overridden by --capacity."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

from queuectl_tui.engine import Capacity
from queuectl_tui.errors import UsageError
from queuectl_tui.workers import capacity, limits
from queuectl_tui.workers.runner import run_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_gpu_setting(monkeypatch):
    monkeypatch.delenv(capacity.GPUS_VAR, raising=False)


def fake_smi(tmp_path: Path, monkeypatch, script: str) -> None:
    """An nvidia-smi of our own, alone on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{script}\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))


def meminfo_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal")


def test_detects_the_cores_this_process_may_use_and_the_memory():
    found = capacity.detect()
    assert found.cpus == len(os.sched_getaffinity(0))
    assert 0 < found.mem <= meminfo_total()


@pytest.mark.parametrize("given, gpus", [("0,1", ("0", "1")), ("none", ()), ("", ()),
                                         (" 2 , GPU-3f2a ", ("2", "GPU-3f2a"))])
def test_queuectl_gpus_overrides_the_detection(monkeypatch, tmp_path, given, gpus):
    fake_smi(tmp_path, monkeypatch, 'echo "GPU 0: Never asked"')
    monkeypatch.setenv(capacity.GPUS_VAR, given)
    assert capacity.detect().gpus == gpus


def test_a_bad_queuectl_gpus_is_a_usage_error(monkeypatch):
    monkeypatch.setenv(capacity.GPUS_VAR, "0,0")
    with pytest.raises(UsageError, match="QUEUECTL_GPUS names a device twice"):
        capacity.detect()


def test_gpus_come_from_nvidia_smi_when_it_is_on_path(monkeypatch, tmp_path):
    fake_smi(tmp_path, monkeypatch, 'echo "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d1c)"\n'
                                    'echo "  MIG 1g.5gb Device 0: (UUID: MIG-1)"\n'
                                    'echo "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-77aa)"')
    assert capacity.detect().gpus == ("0", "1")


@pytest.mark.parametrize("script", ["echo 'NVIDIA-SMI has failed' >&2; exit 9",
                                    "echo 'No devices were found'"])
def test_a_failing_nvidia_smi_means_no_gpus(monkeypatch, tmp_path, script):
    fake_smi(tmp_path, monkeypatch, script)
    assert capacity.detect().gpus == ()


def test_a_hung_nvidia_smi_means_no_gpus_after_its_timeout(monkeypatch, tmp_path):
    fake_smi(tmp_path, monkeypatch, f"exec {sys.executable} -c 'import time; time.sleep(60)'")
    monkeypatch.setattr(capacity, "NVIDIA_SMI_TIMEOUT_S", 0.3)
    start = time.monotonic()
    assert capacity.detect().gpus == ()
    assert time.monotonic() - start < 10


def test_no_nvidia_smi_means_no_gpus(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert capacity.detect().gpus == ()


def test_resolve_lays_the_given_capacity_over_the_detected_one(monkeypatch):
    monkeypatch.setenv(capacity.GPUS_VAR, "0,1,2")
    detected = capacity.detect()
    assert capacity.resolve(None) == detected
    assert capacity.resolve("cpu=1.5,mem=8G") == Capacity(1.5, 8 << 30, ("0", "1", "2"))
    assert capacity.resolve("gpu=none") == Capacity(detected.cpus, detected.mem, ())
    assert capacity.resolve("mem=512M, gpu=1,2") == Capacity(detected.cpus, 512 << 20,
                                                             ("1", "2"))


@pytest.mark.parametrize("text, message", [
    ("foo=1", "--capacity: unknown resource 'foo'; use cpu=N, mem=SIZE and gpu=IDS, "
              "e.g. cpu=4,mem=8G,gpu=0,1"),
    ("cpu=0", "cpus must be a number of cores above 0 and at most 4096, got 0.0"),
    ("mem=lots", '--capacity mem must be a size such as 512M or 16G, got "lots"'),
    ("cpu=1,cpu=2", "--capacity names cpu twice"),
    ("4", "--capacity: '4' is not NAME=VALUE; e.g. cpu=4,mem=8G,gpu=0,1"),
    ("gpu=0,0", "--capacity gpu names a device twice"),
])
def test_bad_capacity_text_is_a_one_line_usage_error(text, message):
    with pytest.raises(UsageError) as caught:
        capacity.resolve(text)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_a_cgroup_memory_limit_below_the_machine_is_the_pools_memory(monkeypatch):
    """Detected inside a limited run, whose group has a 256M limit."""
    monkeypatch.delenv(limits.FORCE_VAR, raising=False)
    monkeypatch.delenv(limits.CGROUP_VAR, raising=False)
    if limits.check() == limits.RLIMIT:
        pytest.skip("no cgroup memory limit can be made here (memory limits use the rlimit)")
    result = run_command(f"{sys.executable} -c 'from queuectl_tui.workers.capacity import "
                         "detect; print(detect().mem)'", timeout=60, open_log=None,
                         mem_limit=256 << 20, env={"PYTHONPATH": str(ROOT)})
    assert result.exit_code == 0, result
    assert int(result.stdout_tail) == 256 << 20
