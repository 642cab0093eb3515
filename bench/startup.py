"""How long `queuectl status` and `queuectl list --limit 20` take, as a whole process.

    python bench/startup.py                          # empty database, 30 runs each
    python bench/startup.py --jobs 0,1000000         # and with a million jobs
    python bench/startup.py --tree before=/tmp/old --tree after=.   # A/B, interleaved

The time a person waits: interpreter start, imports, argument parsing, opening
the database, the query, the output. `.pyc` files are cached (the sandbox sets
PYTHONDONTWRITEBYTECODE, which would make every run recompile queuectl, as no
installed package does): PYTHONPYCACHEPREFIX points at a folder of this run's,
and one warm-up run per command fills it. Floors measured the same way:
`python -c pass` (interpreter and site, including any editable-install
finder), `python -I -S -c pass` (the bare interpreter) and `import peewee`
as queuectl imports it (without the PostgreSQL driver).
A million-job database is 90% completed history and 10% a pending backlog,
written with SQL (bench/targets.py), like bench/run.py's scale section.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
if str(BENCH.parent) not in sys.path:
    sys.path.append(str(BENCH.parent))  # targets.py creates the schema through queuectl

import targets  # noqa: E402
from abtrees import add_tree_option, cached_pyc_env, trees, write_result  # noqa: E402

COMMANDS = {"status": ["status"], "list --limit 20": ["list", "--limit", "20"]}
# queuectl keeps Peewee from importing the PostgreSQL driver for a SQLite file
# (engine/storage/location.py); the Peewee floor does the same.
PEEWEE = "import sys; sys.modules.update(psycopg2=None, psycopg=None); import peewee"
FLOORS = {"python -c pass": ["-c", "pass"], "python -I -S -c pass": ["-I", "-S", "-c", "pass"],
          "import peewee (no driver)": ["-c", PEEWEE]}


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    return time.perf_counter() - start


def summary(times: list[float]) -> dict[str, float]:
    return {"median_ms": round(1000 * statistics.median(times), 1),
            "min_ms": round(1000 * min(times), 1), "max_ms": round(1000 * max(times), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", default="0", help="database sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=30)
    add_tree_option(parser)
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    measured = trees(args)
    work = Path(tempfile.mkdtemp(prefix="queuectl-startup-"))
    base_env = cached_pyc_env(work / "pycache")
    target = targets.SqliteTarget(work)
    result: dict[str, Any] = {"runs": args.runs,
                              "trees": {k: str(v) for k, v in measured.items()},
                              "load_avg_1min_before": os.getloadavg()[0], "figures": {}}
    try:
        floors = {name: [] for name in FLOORS}
        for name, extra in FLOORS.items():
            timed([sys.executable, *extra], base_env, work)  # warm-up
        for size in (int(s) for s in args.jobs.split(",")):
            db = target.new(f"n{size}")
            if size:
                target.prefill(db, completed=size * 9 // 10, backlog=size - size * 9 // 10)
            runs: dict[str, list[float]] = {}
            envs = {name: {**base_env, "PYTHONPATH": str(tree), "QUEUECTL_DB": db}
                    for name, tree in measured.items()}
            for cmd in COMMANDS.values():
                for env in envs.values():  # warm-up: writes the .pyc files
                    timed([sys.executable, "-m", "queuectl_tui", *cmd], env, work)
            for _ in range(args.runs):  # interleaved, so every tree sees the same load
                for label, cmd in COMMANDS.items():
                    for name, env in envs.items():
                        runs.setdefault(f"{name}: {label}, {size:,} jobs", []).append(
                            timed([sys.executable, "-m", "queuectl_tui", *cmd], env, work))
                for name, extra in FLOORS.items():
                    floors[name].append(timed([sys.executable, *extra], base_env, work))
            for key, times in runs.items():
                result["figures"][key] = summary(times)
                print(f"{key}: {result['figures'][key]}", flush=True)
            target.drop(db)
        for name, times in floors.items():
            result["figures"][name] = summary(times)
            print(f"{name}: {result['figures'][name]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_avg_1min_after"] = os.getloadavg()[0]
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
