"""How long `queuectl status` takes to start and answer, whole process.

    python bench/cli_startup.py                          # this checkout, 20 runs
    python bench/cli_startup.py --before /path/to/old    # and another checkout
    python bench/cli_startup.py --also-import argcomplete,shtab

Each variant runs `status` on a small database of its own (checkouts may differ
in schema), `--runs` times, the variants in turn so load elsewhere hits them alike; bytecode is cached (the sandbox's
PYTHONDONTWRITEBYTECODE is unset, so one warm-up run writes it).
`--also-import` adds a variant per module that imports it before the CLI
starts: what a completion library costs every command if it is imported on
every run, as both argcomplete's and shtab's usual set-up do.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ("import sys{imports}\nfrom queuectl_tui.cli import main\n"
          "sys.exit(main(['status']))")


def timed(cmd: list[str], env: dict[str, str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--before", type=Path, help="also measure this checkout")
    parser.add_argument("--also-import", default="", help="comma-separated modules")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        variants: list[tuple[str, Path, str]] = [("this checkout", ROOT, "")]
        if args.before:
            variants.insert(0, (f"before ({args.before.name})", args.before, ""))
        for module in filter(None, args.also_import.split(",")):
            variants.append((f"+ import {module}", ROOT, f"; import {module}"))
        times: dict[str, list[float]] = {label: [] for label, _, _ in variants}
        commands = {label: ([sys.executable, "-c", LAUNCH.format(imports=imports)],
                            {**base, "PYTHONPATH": str(repo),
                             "QUEUECTL_DB": str(Path(tmp) / f"q{number}.db")})
                    for number, (label, repo, imports) in enumerate(variants)}
        for cmd, env in commands.values():
            subprocess.run([sys.executable, "-m", "queuectl_tui", "enqueue", "true"],
                           check=True, env=env, cwd=tmp, stdout=subprocess.DEVNULL)
        for label, (cmd, env) in commands.items():
            timed(cmd, env, tmp)  # warm-up: writes the bytecode
        for _ in range(args.runs):
            for label, (cmd, env) in commands.items():
                times[label].append(timed(cmd, env, tmp))
    for label, got in times.items():
        print(f"{label:<24} median {statistics.median(got) * 1000:6.1f} ms "
              f"(min {min(got) * 1000:.1f}, max {max(got) * 1000:.1f}) over {len(got)} runs")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
