"""What jobs that report progress cost a pool beside them (issue 28), black-box.

    python bench/progress.py                       # full run: 3 rounds, both backends
    python bench/progress.py --quick --out F.json  # CI smoke: SQLite, 300 jobs, 1 round
    python bench/progress.py --backends sqlite --rounds 1 --jobs 2000
    python bench/progress.py --tree /tmp/other --out x.json   # another checkout

A pool started by `worker start --count 2 --queues default` runs N `true` jobs
(workers-first, as bench/flow.py: the clock starts at `enqueue --file` of N
JSON Lines and stops at the last job's `finished_at`). Beside it, a second
pool (`--count 8 --queues talk`) runs 8 long jobs, one of three ways,
interleaved within every round (each goes first as often):

- quiet: each job loops `sleep 0.1` (the baseline: 8 running jobs that say nothing);
- command: each loops `queuectl progress I/1000; sleep 0.1`, ten reports a
  second at most (a report costs a process start, so fewer are made);
- lines: each loops `printf '%d%%\\n' I; sleep 0.1` with `--progress-regex
  '(\\d+)%'`, so its worker reads the lines and writes at most 4 a second.

Reported per run: the pool's jobs/s and worker CPU per job; the reports the
8 jobs made per second (their loop counts over the run). Per backend, once:
how long one report takes, as a job makes it (`queuectl progress` wall time,
median of 20, process start included) and inside the engine (the write alone,
median of 300, in-process).

Real CLI processes only (`python -m queuectl_tui`, `.pyc` cached). The machine's
1-minute load average is recorded before every run: figures from a busy,
shared machine are only comparable within a round. Full runs write
bench/results/progress/results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from abtrees import ROOT, cached_pyc_env
from flow import BACKENDS, PG_ADMIN, git_rev, pg_version
from measure import TICK, cpu_ticks, load, wait_for

RESULTS = ROOT / "bench" / "results" / "progress"
VARIANTS = ("quiet", "command", "lines")
POOL, TALKERS = 2, 8
PATTERN = r"(\d+)%"


def talker(variant: str, stop: Path, count: Path, cli: str) -> str:
    """One of the 8 long jobs: loops until `stop` exists, then writes how many
    times it looped, between which times."""
    say = {"quiet": ":", "command": f"{cli} progress $((i % 1000))/1000",
           "lines": "printf '%d%%\\n' $((i % 100))"}[variant]
    return (f"s=$(date +%s.%N); i=0; while [ ! -e {stop} ]; do i=$((i + 1)); {say}; "
            f"sleep 0.1; done; echo \"$i $s $(date +%s.%N)\" > {count}.$QUEUECTL_JOB_ID")


class Run:
    """One variant on one fresh database, reached only through CLI processes."""

    def __init__(self, backend: str, variant: str, tree: Path, work: Path,
                 pycache: Path) -> None:
        self.db = BACKENDS[backend](work)
        self.variant, self.work = variant, work
        self.env = {**cached_pyc_env(pycache), "QUEUECTL_DB": self.db.url,
                    "PYTHONPATH": str(tree)}
        self.cli = [sys.executable, "-m", "queuectl_tui"]
        self.pools: list[subprocess.Popen] = []
        self.stop = work / f"stop-{time.monotonic_ns()}"
        self.count = work / f"count-{time.monotonic_ns()}"
        self.run("config", "set", "max-retries", "0")

    def run(self, *args: str) -> str:
        done = subprocess.run([*self.cli, *args], env=self.env, cwd=self.work,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"queuectl {' '.join(args)[:60]}: {done.stderr.strip()}")
        return done.stdout

    def start_pool(self, count: int, queue: str) -> list[int]:
        pool = subprocess.Popen([*self.cli, "worker", "start", "--count", str(count),
                                 "--queues", queue], env=self.env, cwd=self.work,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.pools.append(pool)

        def ready() -> list[int] | None:
            pids = [p for (p,) in self.db.rows(
                "SELECT pid FROM worker WHERE supervisor_pid = ? AND state IN ('idle', 'busy')",
                (pool.pid,))]
            return pids if len(pids) == count else None
        return wait_for(f"{count} workers", ready, 90, poll=0.05)

    def start_talkers(self) -> None:
        extra = ("--progress-regex", PATTERN) if self.variant == "lines" else ()
        cli = " ".join(self.cli)
        for _ in range(TALKERS):
            self.run("enqueue", "--queue", "talk", *extra,
                     talker(self.variant, self.stop, self.count, cli))
        self.start_pool(TALKERS, "talk")
        wait_for("the talkers running", lambda: self.db.rows(
            "SELECT COUNT(*) FROM job WHERE queue = 'talk' AND state = 'processing'")[0][0]
            == TALKERS, 90, poll=0.05)

    def stop_talkers(self) -> float:
        """The reports they made per second, all together, once every one has stopped."""
        self.stop.touch()
        wait_for("the talkers to finish", lambda: self.db.rows(
            "SELECT COUNT(*) FROM job WHERE queue = 'talk' AND state = 'completed'")[0][0]
            == TALKERS, 60, poll=0.05)
        rates = []
        for path in self.work.glob(f"{self.count.name}.*"):
            loops, start, end = path.read_text().split()
            rates.append(int(loops) / (float(end) - float(start)))
        return sum(rates)

    def finished(self, n: int) -> float | None:
        done, last = self.db.rows(
            "SELECT SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), "
            "MAX(finished_at) FROM job WHERE queue = 'default'")[0]
        return last if (done or 0) >= n else None

    def close(self) -> None:
        from measure import stop
        self.stop.touch()
        try:
            for pool in self.pools:
                stop(pool, timeout=60)
        finally:
            self.db.drop()


def throughput(run: Run, jobs_file: Path, n: int) -> dict[str, Any]:
    run.start_talkers()
    workers = run.start_pool(POOL, "default")
    before = {pid: cpu_ticks(pid) for pid in workers}
    start = time.time()
    run.run("enqueue", "--file", str(jobs_file))
    last = wait_for("all jobs completed", lambda: run.finished(n), 600, poll=0.05)
    after = {pid: cpu_ticks(pid) for pid in workers}
    talked = run.stop_talkers()
    own = sum(after[p][0] - before[p][0] for p in workers)
    return {"jobs_per_s": round(n / (last - start), 1),
            "worker_cpu_us_per_job": round(own / TICK / n * 1e6),
            "reports_per_s": round(talked, 1) if run.variant != "quiet" else None}


def report_cost(backend: str, tree: Path, work: Path, pycache: Path) -> dict[str, Any]:
    """How long one report takes: `queuectl progress` as a process (wall, process
    start included) and the engine's write alone (in-process)."""
    run = Run(backend, "quiet", tree, work, pycache)
    try:
        job = run.run("enqueue", "--queue", "talk", "--json", f"while [ ! -e {run.stop} ]; "
                      "do sleep 0.05; done")
        job_id = json.loads(job)["id"]
        run.start_pool(1, "talk")
        wait_for("the job running", lambda: run.db.rows(
            "SELECT state FROM job WHERE id = ?", (job_id,))[0][0] == "processing", 60)
        walls = []
        for i in range(20):
            t = time.perf_counter()
            run.run("progress", f"{i}/20", "--job", job_id)
            walls.append(time.perf_counter() - t)
        code = ("import json, sys, time\n"
                "from queuectl_tui.engine import Queue, open_database, parse_progress\n"
                "q = Queue(open_database(sys.argv[1]))\n"
                "took = []\n"
                "for i in range(300):\n"
                "    t = time.perf_counter()\n"
                "    assert q.report_progress(sys.argv[2], None, parse_progress(str(i % 100)))\n"
                "    took.append(time.perf_counter() - t)\n"
                "print(json.dumps(sorted(took)[len(took) // 2]))\n")
        inside = json.loads(subprocess.run([sys.executable, "-c", code, run.db.url, job_id],
                                           env=run.env, check=True, capture_output=True,
                                           text=True).stdout)
    finally:
        run.close()
    return {"cli_ms": round(statistics.median(walls) * 1e3, 1),
            "engine_us": round(inside * 1e6)}


def measure(backends: list[str], rounds: int, jobs: dict[str, int], tree: Path,
            work: Path) -> dict[str, Any]:
    pycache = work / "pycache"
    files = {}
    for backend in backends:
        path = work / f"{backend}.jsonl"
        path.write_text('{"command": "true"}\n' * jobs[backend])
        files[backend] = path
    subprocess.run([sys.executable, "-m", "queuectl_tui", "--help"], cwd=work,
                   env={**cached_pyc_env(pycache), "PYTHONPATH": str(tree)},
                   stdout=subprocess.DEVNULL, check=True)
    runs: list[dict[str, Any]] = []
    costs = {}
    for backend in backends:
        costs[backend] = report_cost(backend, tree, work, pycache)
        print(json.dumps({"backend": backend, "report": costs[backend]}), flush=True)
    for rnd in range(rounds):
        shift = rnd % len(VARIANTS)
        order = VARIANTS[shift:] + VARIANTS[:shift]
        for backend in backends:
            for variant in order:
                before = load()
                run = Run(backend, variant, tree, work, pycache)
                try:
                    row = throughput(run, files[backend], jobs[backend])
                finally:
                    run.close()
                row = {"round": rnd + 1, "backend": backend, "variant": variant,
                       "load": before, **row}
                runs.append(row)
                print(json.dumps(row), flush=True)
    return {"runs": runs, "report": costs, "summary": summarise(runs, backends)}


def summarise(runs: list[dict[str, Any]], backends: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend in backends:
        b: dict[str, Any] = {}
        for variant in VARIANTS:
            rows = [r for r in runs if (r["backend"], r["variant"]) == (backend, variant)]
            b[variant] = {
                "jobs_per_s": [r["jobs_per_s"] for r in rows],
                "jobs_per_s_median": statistics.median(r["jobs_per_s"] for r in rows),
                "worker_cpu_us_per_job_median": statistics.median(
                    r["worker_cpu_us_per_job"] for r in rows),
                "reports_per_s_median": None if variant == "quiet" else statistics.median(
                    r["reports_per_s"] for r in rows)}
        quiet = b["quiet"]["jobs_per_s"]
        for variant in VARIANTS[1:]:
            b[variant]["ratio"] = round(b[variant]["jobs_per_s_median"]
                                        / b["quiet"]["jobs_per_s_median"], 3)
            b[variant]["ratio_per_round"] = [round(x / q, 3) for x, q in
                                             zip(b[variant]["jobs_per_s"], quiet)]
        out[backend] = b
    return out


def table(result: dict[str, Any]) -> str:
    lines = ["| backend | beside the pool | jobs/s median (runs) | / quiet (per round) | "
             "worker CPU µs/job | reports/s made |", "|---|---|---|---|---|---|"]
    for backend, b in result["summary"].items():
        for variant in VARIANTS:
            v = b[variant]
            ratio = "" if variant == "quiet" else (
                f"{v['ratio']:.2f} ({', '.join(f'{x:.2f}' for x in v['ratio_per_round'])})")
            reports = "-" if v["reports_per_s_median"] is None else \
                f"{v['reports_per_s_median']:.0f}"
            lines.append(f"| {backend} | {variant} | {v['jobs_per_s_median']:,.0f} "
                         f"({', '.join(f'{x:,.0f}' for x in v['jobs_per_s'])}) | {ratio} | "
                         f"{v['worker_cpu_us_per_job_median']:.0f} | {reports} |")
    lines += ["", "| backend | `queuectl progress` (wall, process start included) | "
              "the engine's write alone |", "|---|---|---|"]
    for backend, cost in result["report"].items():
        lines.append(f"| {backend} | {cost['cli_ms']:.0f} ms | {cost['engine_us']} µs |")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    st = result["settings"]
    loads = [r["load"] for r in result["runs"]]
    return "\n".join([
        "# Jobs that report progress beside a pool (issue 28, bench/progress.py)", "",
        f"Run of {result['when']} on commit `{st['queuectl']}` ({result['elapsed_s'] / 60:.1f} "
        f"minutes), {st['cores']} cores shared with other work: 1-minute load average "
        f"{min(loads):.2f}–{max(loads):.2f} before the runs (each run's in results.json).", "",
        f"Settings: {st['rounds']} rounds, variants interleaved; a pool of {POOL} workers "
        "runs N `true` jobs (workers-first), N = "
        + ", ".join(f"{n:,} on {b}" for b, n in st["jobs"].items())
        + f"; beside it {TALKERS} jobs in a pool of their own report progress ten times a "
        "second at most (see the module's docstring); PostgreSQL "
        f"{st['postgresql'] or '-'}; Python {st['python']}.", "",
        table(result), "",
        *(f"Note: {n}" for n in result.get("notes", [])), ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke: SQLite, 300 jobs, 1 round; nothing committed is written")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--jobs", type=int, help="N (default 2000 SQLite, 1000 PostgreSQL)")
    ap.add_argument("--backends", help="default sqlite,postgresql (--quick: sqlite)")
    ap.add_argument("--tree", type=Path, default=ROOT,
                    help="the checkout whose queuectl_tui is measured (default: this one)")
    ap.add_argument("--out", type=Path, help="write the JSON here (default: "
                    f"{RESULTS.relative_to(ROOT)}/results.json and results.md; --quick: none)")
    args = ap.parse_args()
    t0 = time.monotonic()
    backends = (args.backends or ("sqlite" if args.quick else "sqlite,postgresql")).split(",")
    notes = []
    version = pg_version() if "postgresql" in backends else None
    if "postgresql" in backends and version is None:
        raise SystemExit(f"PostgreSQL is not reachable at {PG_ADMIN} (--backends sqlite)")
    rounds = args.rounds or (1 if args.quick else 3)
    default_n = {"sqlite": 300, "postgresql": 200} if args.quick else {
        "sqlite": 2000, "postgresql": 1000}
    jobs = {b: args.jobs or default_n[b] for b in backends}
    work = Path(tempfile.mkdtemp(prefix="queuectl-progress-"))
    try:
        result = measure(backends, rounds, jobs, args.tree.resolve(), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["settings"] = {"rounds": rounds, "jobs": jobs, "workers": POOL,
                          "talkers": TALKERS, "queuectl": git_rev(args.tree),
                          "postgresql": version, "python": platform.python_version(),
                          "cores": os.cpu_count()}
    result["notes"] = notes
    result["elapsed_s"] = round(time.monotonic() - t0, 1)
    result["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print()
    print(table(result))
    print(f"\n{result['elapsed_s']:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    elif not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "results.json").write_text(json.dumps(result, indent=1) + "\n")
        (RESULTS / "results.md").write_text(markdown(result))
        print(f"written to {RESULTS.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
