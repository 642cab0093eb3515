"""What flow control costs when it does not bind (issue 27, "Cheap"), black-box.

    python bench/flow.py                       # full run: 3 rounds, both backends
    python bench/flow.py --quick --out F.json  # CI smoke: small N, 1 round, nothing committed
    python bench/flow.py --backends sqlite --rounds 1 --jobs 2000
    python bench/flow.py --tree /tmp/other --backends postgresql --out x.json   # another checkout

Two variants, interleaved within every round (none, rules, then rules, none in
the next round, so each goes first as often):

- none: plain `true` jobs into a pool started by `worker start --count 2`;
- rules: the same jobs with every rule present but never binding:
  `queue rate default 100000/1s`, `queue limit default --per-key 1000` with each
  job carrying a `key` among 50 values, and each job stating `"cpus": 0.001`
  into a pool started with `--capacity cpu=64` (so the capacity gate is checked
  on every claim).

Per backend (a fresh SQLite file, or a fresh PostgreSQL database `qc_flow_<n>`,
per run) and variant:

- throughput, workers-first: the pool is started and waited for until both
  workers are registered idle (the worker table), then the clock starts and
  `enqueue --file` of N JSON Lines runs; the end is the last job's
  `finished_at`, read from the database in-process every 50 ms. Worker CPU per
  job: utime + stime of the two workers from /proc over the window (the `sh`
  children apart), as `blackbox.py` does.
- pickup latency of an idle pool: K jobs, one `queuectl enqueue` process each,
  the next only once the last one has completed; pickup = `started_at -
  created_at` (queuectl's own stamps: before the enqueue's transaction, inside
  the claim's). Median, p95, p99.

Real CLI processes only (`python -m queuectl_tui`, QUEUECTL_DB in the
environment, `.pyc` cached). The 1-minute load average is recorded before every
run. Full runs write bench/results/flow/results.json and results.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from abtrees import ROOT, cached_pyc_env
from measure import TICK, cpu_ticks, load, pct, wait_for

RESULTS = ROOT / "bench" / "results" / "flow"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
VARIANTS = ("none", "rules")
KEYS = 50
POOL = 2
RULES = (("queue", "rate", "default", "100000/1s"),
         ("queue", "limit", "default", "--per-key", "1000"))
CAPACITY = ("--capacity", "cpu=64")
NEEDS = {"cpus": 0.001}


# =========================================================================== backends

class SqliteDb:
    """A fresh SQLite file for one run."""

    name = "sqlite"
    param = "?"

    def __init__(self, work: Path) -> None:
        self.path = work / f"flow-{time.monotonic_ns()}.db"
        self.url = str(self.path)
        self._conn: sqlite3.Connection | None = None

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self._conn is None:  # the CLI creates the file: open it only once it exists
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30,
                                         isolation_level=None)
        return self._conn.execute(sql, params).fetchall()

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(f"{self.path}.logs", ignore_errors=True)


class PostgresDb:
    """A fresh PostgreSQL database `qc_flow_<n>` for one run, dropped after it."""

    name = "postgresql"
    param = "%s"
    _serial = itertools.count(1)

    def __init__(self, work: Path) -> None:
        import psycopg2
        self.dbname = f"qc_flow_{os.getpid()}_{next(self._serial)}"
        _pg_admin(f'CREATE DATABASE "{self.dbname}"')
        self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.dbname
        self._conn = psycopg2.connect(self.url)
        self._conn.autocommit = True

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        cur = self._conn.cursor()
        cur.execute(sql.replace("?", self.param), params)
        return cur.fetchall()

    def drop(self) -> None:
        self._conn.close()
        _pg_admin(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


def _pg_admin(statement: str) -> list[tuple]:
    import psycopg2
    conn = psycopg2.connect(PG_ADMIN, connect_timeout=3)
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute(statement)
        return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def pg_version() -> str | None:
    """The server's version, or None when it is not reachable."""
    try:
        return _pg_admin("SHOW server_version")[0][0]
    except Exception:  # noqa: BLE001 - any failure means: no PostgreSQL here
        return None


BACKENDS = {"sqlite": SqliteDb, "postgresql": PostgresDb}


# =========================================================================== one run

class Run:
    """One variant on one fresh database, reached only through CLI processes."""

    def __init__(self, backend: str, variant: str, tree: Path, work: Path,
                 pycache: Path) -> None:
        self.db = BACKENDS[backend](work)
        self.variant = variant
        self.work = work
        self.env = {**cached_pyc_env(pycache), "QUEUECTL_DB": self.db.url,
                    "PYTHONPATH": str(tree)}
        self.cli = [sys.executable, "-m", "queuectl_tui"]
        self.pool: subprocess.Popen | None = None
        self.workers: list[int] = []
        # `worker start` needs the database: any write creates it (both variants
        # make the same first write, so their start-up is alike)
        self.run("config", "set", "max-retries", "0")
        if variant == "rules":
            for rule in RULES:
                self.run(*rule)

    def run(self, *args: str) -> str:
        return subprocess.run([*self.cli, *args], env=self.env, check=True, cwd=self.work,
                              stdout=subprocess.PIPE, text=True).stdout

    def start_pool(self) -> list[int]:
        extra = CAPACITY if self.variant == "rules" else ()
        self.pool = subprocess.Popen([*self.cli, "worker", "start", "--count", str(POOL),
                                      *extra], env=self.env, cwd=self.work,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        supervisor = self.pool.pid

        def idle() -> list[int] | None:
            pids = [p for (p,) in self.db.rows(
                "SELECT pid FROM worker WHERE supervisor_pid = ? AND state = 'idle'",
                (supervisor,))]
            return pids if len(pids) == POOL else None
        self.workers = wait_for("workers idle", idle, 60, poll=0.05)
        return self.workers

    def finished(self, n: int) -> float | None:
        """The last finished_at once all n jobs are completed, else None; a job
        that did not complete fails the run at once (not after the deadline)."""
        done, last, lost = self.db.rows(
            "SELECT SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), "
            "MAX(CASE WHEN state = 'completed' THEN finished_at END), "
            "SUM(CASE WHEN state IN ('dead', 'failed', 'cancelled') THEN 1 ELSE 0 END) "
            "FROM job")[0]
        if lost:
            raise RuntimeError(f"{lost} job(s) did not complete ({self.variant}, {self.db.name})")
        return last if (done or 0) >= n else None

    def close(self) -> None:
        try:
            if self.pool is not None and self.pool.poll() is None:
                os.killpg(self.pool.pid, signal.SIGTERM)
                self.pool.wait(60)
        finally:
            self.db.drop()


def job_line(i: int, variant: str) -> dict[str, Any]:
    if variant == "none":
        return {"command": "true"}
    return {"command": "true", "key": f"k{i % KEYS}", **NEEDS}


def throughput(run: Run, jobs_file: Path, n: int) -> dict[str, Any]:
    workers = run.start_pool()
    before = {pid: cpu_ticks(pid) for pid in workers}
    start = time.time()
    t = time.monotonic()
    run.run("enqueue", "--file", str(jobs_file))
    enqueue_s = time.monotonic() - t
    last = wait_for("all jobs completed", lambda: run.finished(n), 600, poll=0.05)
    after = {pid: cpu_ticks(pid) for pid in workers}
    own = sum(after[p][0] - before[p][0] for p in workers)
    child = sum(after[p][1] - before[p][1] for p in workers)
    return {"jobs_per_s": round(n / (last - start), 1), "enqueue_s": round(enqueue_s, 3),
            "worker_cpu_us_per_job": round(own / TICK / n * 1e6),
            "sh_cpu_us_per_job": round(child / TICK / n * 1e6)}


def pickup(run: Run, k: int) -> dict[str, Any]:
    run.start_pool()
    lat = []
    for i in range(k):
        extra = (("--key", f"k{i % KEYS}", "--cpus", str(NEEDS["cpus"]))
                 if run.variant == "rules" else ())
        job_id = run.run("enqueue", *extra, "true").split()[-1]

        def done() -> tuple | None:
            row = run.db.rows("SELECT state, created_at, started_at FROM job WHERE id = ?",
                              (job_id,))
            if row and row[0][0] in ("dead", "failed", "cancelled"):
                raise RuntimeError(f"job {job_id} ended {row[0][0]}")
            return row[0] if row and row[0][0] == "completed" else None
        _, created, started = wait_for(f"job {job_id} completed", done, 60, poll=0.01)
        lat.append(started - created)
    return {"k": k, "p50_ms": round(pct(lat, 50) * 1e3, 2),
            "p95_ms": round(pct(lat, 95) * 1e3, 2), "p99_ms": round(pct(lat, 99) * 1e3, 2),
            "max_ms": round(max(lat) * 1e3, 2), "latencies_ms": [round(x * 1e3, 2) for x in lat]}


# =========================================================================== the rounds

def measure(backends: list[str], rounds: int, jobs: dict[str, int], k: int, tree: Path,
            work: Path) -> dict[str, Any]:
    pycache = work / "pycache"
    files = {}
    for backend in backends:
        for variant in VARIANTS:
            path = work / f"{backend}-{variant}.jsonl"
            path.write_text("".join(json.dumps(job_line(i, variant)) + "\n"
                                    for i in range(jobs[backend])))
            files[backend, variant] = path
    # warm the .pyc cache so the first run does not pay for compiling
    subprocess.run([sys.executable, "-m", "queuectl_tui", "--help"], cwd=work,
                   env={**cached_pyc_env(pycache), "PYTHONPATH": str(tree)},
                   stdout=subprocess.DEVNULL, check=True)
    runs: list[dict[str, Any]] = []
    for rnd in range(rounds):
        order = VARIANTS if rnd % 2 == 0 else VARIANTS[::-1]
        for backend in backends:
            for what in ("throughput", "pickup"):
                for variant in order:
                    before = load()
                    run = Run(backend, variant, tree, work, pycache)
                    try:
                        row = (throughput(run, files[backend, variant], jobs[backend])
                               if what == "throughput" else pickup(run, k))
                    finally:
                        run.close()
                    row = {"round": rnd + 1, "backend": backend, "what": what,
                           "variant": variant, "load": before, **row}
                    runs.append(row)
                    shown = {x: v for x, v in row.items() if x != "latencies_ms"}
                    print(json.dumps(shown), flush=True)
    return {"runs": runs, "summary": summarise(runs, backends)}


def summarise(runs: list[dict[str, Any]], backends: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend in backends:
        b: dict[str, Any] = {}
        for variant in VARIANTS:
            tp = [r for r in runs if (r["backend"], r["what"], r["variant"]) ==
                  (backend, "throughput", variant)]
            pk = [r for r in runs if (r["backend"], r["what"], r["variant"]) ==
                  (backend, "pickup", variant)]
            lat = [x for r in pk for x in r["latencies_ms"]]
            b[variant] = {
                "jobs_per_s": [r["jobs_per_s"] for r in tp],
                "jobs_per_s_median": statistics.median(r["jobs_per_s"] for r in tp),
                "worker_cpu_us_per_job_median": statistics.median(
                    r["worker_cpu_us_per_job"] for r in tp),
                "pickup_k": len(lat), "pickup_p50_ms": round(pct(lat, 50), 2),
                "pickup_p95_ms": round(pct(lat, 95), 2), "pickup_p99_ms": round(pct(lat, 99), 2),
                "pickup_max_ms": round(max(lat), 2)}
        none, rules = b["none"], b["rules"]
        b["ratio"] = round(rules["jobs_per_s_median"] / none["jobs_per_s_median"], 3)
        # each round's rules run against the none run of the same round (same load)
        b["ratio_per_round"] = [round(r / n, 3) for r, n in
                                zip(rules["jobs_per_s"], none["jobs_per_s"])]
        b["cpu_ratio"] = round(rules["worker_cpu_us_per_job_median"] /
                               none["worker_cpu_us_per_job_median"], 3)
        out[backend] = b
    return out


def table(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = ["| backend | variant | jobs/s median (runs) | rules/none | worker CPU µs/job | "
             "pickup p50 / p95 / p99 ms (K) |", "|---|---|---|---|---|---|"]
    for backend, b in s.items():
        for variant in VARIANTS:
            v = b[variant]
            ratio = (f"{b['ratio']:.3f} (per round {', '.join(f'{x:.2f}' for x in b['ratio_per_round'])})"
                     if variant == "rules" else "")
            cpu = f"{v['worker_cpu_us_per_job_median']:.0f}"
            if variant == "rules":
                cpu += f" (x{b['cpu_ratio']:.2f})"
            lines.append(
                f"| {backend} | {variant} | {v['jobs_per_s_median']:,.0f} "
                f"({', '.join(f'{x:,.0f}' for x in v['jobs_per_s'])}) | {ratio} | {cpu} | "
                f"{v['pickup_p50_ms']:.1f} / {v['pickup_p95_ms']:.1f} / "
                f"{v['pickup_p99_ms']:.1f} ({v['pickup_k']}) |")
    return "\n".join(lines)


def git_rev(tree: Path) -> str:
    rev = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain",
                            "queuectl_tui"], capture_output=True, text=True).stdout.strip()
    return rev + ("+dirty" if dirty else "")


def markdown(result: dict[str, Any]) -> str:
    st = result["settings"]
    loads = [r["load"] for r in result["runs"]]
    return "\n".join([
        "# Flow control when it does not bind (issue 27, bench/flow.py)", "",
        f"Run of {result['when']} on commit `{st['queuectl']}` ({result['elapsed_s'] / 60:.1f} "
        f"minutes), {st['cores']} cores shared with other work: 1-minute load average "
        f"{min(loads):.2f}–{max(loads):.2f} before the runs (each run's in results.json).", "",
        f"Settings: {st['rounds']} rounds, variants interleaved (alternating first); "
        f"throughput workers-first with `worker start --count {POOL}`, N = "
        + ", ".join(f"{n:,} on {b}" for b, n in st["jobs"].items())
        + f"; pickup K = {st['k']} per run, one `queuectl enqueue` each into the idle pool; "
        f"durability `{st['durability']}` (the default); PostgreSQL {st['postgresql'] or '-'}; "
        f"Python {st['python']}.", "",
        "rules = `queue rate default 100000/1s`, `queue limit default --per-key 1000` "
        f"with {KEYS} keys, every job `\"cpus\": 0.001` into a pool `--capacity cpu=64`. "
        "none = plain `true` jobs, no rule, pool capacity detected.", "",
        table(result), "",
        *(f"Note: {n}" for n in result.get("notes", [])), ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke: 300 jobs, K=10, 1 round; nothing committed is written")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--jobs", type=int, help="N for both backends (default 5000 SQLite, "
                    "3000 PostgreSQL)")
    ap.add_argument("--pickups", type=int, help="K, jobs per pickup run (default 40)")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--tree", type=Path, default=ROOT,
                    help="the checkout whose queuectl_tui is measured (default: this one)")
    ap.add_argument("--out", type=Path, help="write the JSON here (default: "
                    f"{RESULTS.relative_to(ROOT)}/results.json and results.md; --quick: none)")
    args = ap.parse_args()
    t0 = time.monotonic()
    backends = args.backends.split(",")
    notes = []
    version = pg_version() if "postgresql" in backends else None
    if "postgresql" in backends and version is None:
        if not args.quick:
            raise SystemExit(f"PostgreSQL is not reachable at {PG_ADMIN} (--backends sqlite)")
        backends.remove("postgresql")
        notes.append(f"PostgreSQL not reachable at {PG_ADMIN}: SQLite only")
        print(notes[-1], file=sys.stderr)
    rounds = args.rounds or (1 if args.quick else 3)
    k = args.pickups or (10 if args.quick else 40)
    default_n = {"sqlite": 300, "postgresql": 200} if args.quick else {
        "sqlite": 5000, "postgresql": 3000}
    jobs = {b: args.jobs or default_n[b] for b in backends}
    work = Path(tempfile.mkdtemp(prefix="queuectl-flow-"))
    try:
        result = measure(backends, rounds, jobs, k, args.tree.resolve(), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    durability = subprocess.run(  # the default, as every run used it (nothing set it)
        [sys.executable, "-m", "queuectl_tui", "config", "get", "durability"],
        env={**os.environ, "PYTHONPATH": str(args.tree), "QUEUECTL_DB": "/nonexistent/flow.db"},
        capture_output=True, text=True).stdout.strip()
    result["settings"] = {"rounds": rounds, "jobs": jobs, "k": k, "workers": POOL,
                          "keys": KEYS, "durability": durability, "queuectl": git_rev(args.tree),
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
