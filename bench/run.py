#!/usr/bin/env python3
"""queuectl benchmark: throughput as a user runs it, pickup latency, bulk enqueue, status time, scale.

    python bench/run.py            # full run (about 15 minutes on 2 cores)
    python bench/run.py --quick    # smoke run for CI (under a minute)

The headline is black-box: `queuectl enqueue --file` and `queuectl worker start`
as real processes, completion read from the database, beside huey, task-spooler
and the spawn ceiling in the same interleaved rounds (bench/blackbox.py,
bench/systems.py, bench/measure.py). The in-process figures (enqueue through
the engine into pre-started workers) follow as a second table.

It installs its own peers when they are missing (huey, rq, redis-py and
matplotlib with pip into this interpreter; task-spooler with apt-get when run
as root) and skips a peer, with a note, when it cannot be had. Results go to
bench/results/ (bench/results/quick/ for --quick): results.md, results.json,
results.png. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # after $PYTHONPATH and the installed package

import blackbox  # noqa: E402
from abtrees import cached_pyc_env  # noqa: E402
import measure  # noqa: E402
import systems  # noqa: E402
import targets  # noqa: E402
from measure import pct, summary  # noqa: E402
from systems import Skip  # noqa: E402

SECTIONS = ("blackbox", "pickup", "throughput", "latency", "bulk", "status", "scale")
BLACKBOX_PEERS = ("huey", "task-spooler")  # RQ (~30 jobs/s here) only in the in-process table

PROFILES = {
    "full": dict(bb_n=10_000, bb_reps=3, pickup_k=1000, pickup_cli_k=200,
                 n_true=2000, n_sleep=200, reps=2, peer_cap={"rq": 300}, latency_k=300,
                 idle_s=10.0, bulk_n=100_000, bulk_reps=2, bulk_big_n=1_000_000, status_runs=30,
                 scale_sizes=(1_000, 1_000_000), scale_n=2000, scale_reps=3),
    "quick": dict(bb_n=500, bb_reps=1, pickup_k=100, pickup_cli_k=10,
                  n_true=200, n_sleep=40, reps=1, peer_cap={"rq": 60}, latency_k=30,
                  idle_s=2.0, bulk_n=10_000, bulk_reps=1, bulk_big_n=30_000, status_runs=5,
                  scale_sizes=(1_000, 20_000), scale_n=200, scale_reps=1),
}


def log(msg: str) -> None:
    print(msg, flush=True)


# =========================================================================== setup

PIP_PEERS = {"huey": "huey", "rq": "rq", "redis": "redis", "matplotlib": "matplotlib"}


def ensure_peers(install: bool) -> list[str]:
    """Install what is missing; returns notes about what could not be had."""
    notes = []
    missing = [pkg for mod, pkg in PIP_PEERS.items() if not _importable(mod)]
    if missing and install:
        log(f"setup: pip install {' '.join(missing)}")
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing],
                           capture_output=True, text=True)
        if r.returncode != 0:
            notes.append(f"pip install {' '.join(missing)} failed: "
                         f"{(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        importlib.invalidate_caches()
    for mod, pkg in PIP_PEERS.items():
        if not _importable(mod):
            notes.append(f"{pkg} is not available (pip)")
    if systems.tsp_binary() is None and install:
        notes.extend(_apt_install("task-spooler"))
    if systems.tsp_binary() is None:
        notes.append("task-spooler is not available (apt-get install task-spooler)")
    return notes


def _importable(mod: str) -> bool:
    try:
        importlib.import_module(mod)
        return True
    except ImportError:
        return False


def _apt_install(package: str) -> list[str]:
    if shutil.which("apt-get") is None:
        return [f"no apt-get to install {package}"]
    if os.geteuid() != 0:
        return [f"not root: cannot apt-get install {package}"]
    log(f"setup: apt-get install -y {package}")
    cmd = ["apt-get", "install", "-y", "-qq", package]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:  # the package lists may be missing or stale
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=600)
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    return [] if r.returncode == 0 else [f"apt-get install {package} failed"]


def make_peers(workdir: Path, wanted: list[str], notes: list[str]) -> list[Any]:
    peers = []
    for name, cls in (("huey", systems.Huey), ("task-spooler", systems.TaskSpooler),
                      ("rq", systems.RQ)):
        if name not in wanted:
            continue
        try:
            peers.append(cls(workdir))
        except Skip as exc:
            notes.append(f"skipped {name}: {exc}")
            log(f"note: skipped {name}: {exc}")
    return peers


# =========================================================================== helpers

def time_process(argv: list[str], runs: int) -> dict[str, Any]:
    """Wall time of a whole process, `runs` times after one warm-up."""
    # A sandbox may set PYTHONDONTWRITEBYTECODE, which makes every run recompile
    # queuectl from source; an installed package has its .pyc files, so let the
    # warm-up run write them (to a cache of their own, not into the checkout).
    env = cached_pyc_env()
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=tempfile.gettempdir())
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env,
                       cwd=tempfile.gettempdir())
        times.append(time.perf_counter() - t)
    return {"median_ms": statistics.median(times) * 1000, "min_ms": min(times) * 1000,
            "max_ms": max(times) * 1000, "runs": runs}


def qctl(db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "queuectl_tui", "--db", db, *args]


# =========================================================================== sections

ORDERS = ("enqueue-first", "workers-first")


def measured_tree() -> Path:
    """The checkout whose queuectl_tui this process imports (working tree, --ref
    export or --tree): the black-box CLI processes run that one too."""
    import queuectl_tui
    return Path(queuectl_tui.__file__).resolve().parent.parent


def bench_blackbox(cfg, workdir, peers, results) -> None:
    """The headline: N `true` jobs as a user runs them, queuectl (2 and 1 workers)
    beside huey, task-spooler and the spawn ceiling, one run of each per round,
    rounds repeated, so a burst of load from elsewhere hits them all alike. The
    1-minute load average is recorded beside every run."""
    n, tree = cfg["bb_n"], measured_tree()
    pycache = workdir / "pycache"
    jobs_file = workdir / f"blackbox-{n}.jsonl"
    jobs_file.write_text('{"command": "true"}\n' * n)
    w = cfg["workers"]
    entries: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    for order in ORDERS:
        entries.append((f"queuectl x{w} {order}", lambda o=order: blackbox.one_run(
            tree, workdir, jobs_file, n, w, o, pycache)))
        for peer in peers:
            if peer.name in BLACKBOX_PEERS:
                entries.append((f"{peer.name} x{w} {order}", lambda p=peer, o=order: _rate(
                    p.blackbox("true", n, w, o))))
    if w != 1:
        for order in ORDERS:
            entries.append((f"queuectl x1 {order}", lambda o=order: blackbox.one_run(
                tree, workdir, jobs_file, n, 1, o, pycache)))
    for how in measure.SPAWN_HOWS:
        entries.append((f"spawn ceiling ({how}) x{w}", lambda h=how: measure.spawn_ceiling(
            n, h, procs=w)))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in entries}
    failed: set[str] = set()
    for rep in range(cfg["bb_reps"]):
        for name, run in entries:
            if name in failed:
                continue
            before = measure.load()
            try:
                row = run()
            except Exception as exc:  # a peer failing must not sink the whole run
                log(f"    {name} failed: {exc}")
                results["notes"].append(f"black-box {name} failed: {exc}")
                failed.add(name)
                continue
            row = {k: v for k, v in row.items() if k not in ("t0", "t1")}
            row["load"] = before
            runs[name].append(row)
            log(f"  black-box round {rep + 1}/{cfg['bb_reps']} {name}: "
                f"{row['jobs_per_s']:,.0f} jobs/s (load {before:.2f})"
                + (f"; worker CPU {row['worker_cpu_us_per_job']} us/job + sh "
                   f"{row['sh_cpu_us_per_job']}" if "worker_cpu_us_per_job" in row else ""))
    out = {}
    for name, rows in runs.items():
        if not rows:
            continue
        entry = {**summary([r["jobs_per_s"] for r in rows]), "rows": rows,
                 "load": [r["load"] for r in rows]}
        for key in ("worker_cpu_us_per_job", "sh_cpu_us_per_job"):
            if key in rows[0]:
                entry[key] = statistics.median(r[key] for r in rows)
        out[name] = entry
    results["blackbox"] = {"n": n, "workers": w, "runs": out}


def _rate(run: systems.Run) -> dict[str, Any]:
    return {"jobs_per_s": round(run.rate, 1), "enqueue_s": round(run.extra["enqueue_s"], 3),
            "n": run.n}


def bench_pickup(cfg, workdir, results) -> None:
    """Pickup latency black-box: a pool started by `worker start`, jobs enqueued one
    at a time into idle workers, by a process calling the engine and by the CLI."""
    tree, out = measured_tree(), {}
    for via, k in (("engine", cfg["pickup_k"]), ("cli", cfg["pickup_cli_k"])):
        before = measure.load()
        res = blackbox.pickup(tree, workdir, k, cfg["workers"], via, workdir / "pycache")
        row = {**blackbox.pickup_summary(res), "load": before}
        out[via] = row
        log(f"  pickup latency, {k} jobs enqueued by {via}: p50 {row['p50_ms']:.1f} ms, "
            f"p99 {row['p99_ms']:.1f} ms, max {row['max_ms']:.1f} ms, "
            f"{row['over_200ms']} over 200 ms (load {before:.2f})")
        if row["over_200ms"]:
            log(f"    slowest (ms; enqueue = its own transaction, after_enqueue = wake-up "
                f"and claim): {row['slowest']}")
    results["pickup"] = out


def bench_throughput(cfg, target, workdir, peers, results) -> None:
    """Runs are interleaved (every system once, then every system again, ...) so a
    burst of load from elsewhere on the machine hits all systems alike."""
    out = results["throughput"] = {}
    for workload, command, n in (("true", "true", cfg["n_true"]),
                                 ("sleep 0.01", "sleep 0.01", cfg["n_sleep"])):
        entries = [(f"queuectl ({d})", systems.Queuectl(target, workdir, durability=d,
                                                         label=f"queuectl ({d})"))
                   for d in ("full", "normal")] + [(p.name, p) for p in peers]
        runs: dict[str, list[systems.Run]] = {name: [] for name, _ in entries}
        failed: set[str] = set()
        for rep in range(cfg["reps"]):
            for name, system in entries:
                if name in failed:
                    continue
                pn = min(n, cfg["peer_cap"].get(name, n))
                try:
                    run = system.throughput(command, pn, cfg["workers"])
                except Exception as exc:  # a peer failing must not sink the whole run
                    log(f"    {name} failed: {exc}")
                    results["notes"].append(f"{name} throughput {workload!r} failed: {exc}")
                    failed.add(name)
                    continue
                runs[name].append(run)
                log(f"  {workload!r} run {rep + 1}/{cfg['reps']} {name}: {run.n} jobs in "
                    f"{run.seconds:.2f} s = {run.rate:,.0f} jobs/s "
                    f"(enqueue {run.extra.get('enqueue_s', 0):.2f} s)")
        out[workload] = {name: {"n": rs[0].n, **summary([r.rate for r in rs]),
                                "extra": [r.extra for r in rs]}
                         for name, rs in runs.items() if rs}


def bench_latency(cfg, target, workdir, peers, results) -> None:
    out = results["latency"] = {}
    entries = [systems.Queuectl(target, workdir, label="queuectl")] + \
        [p for p in peers if hasattr(p, "latency")]
    for s in entries:
        log(f"  pickup latency: {s.name} ({cfg['latency_k']} jobs, then idle CPU "
            f"over {cfg['idle_s']:g} s)" if s.name == "queuectl" else
            f"  pickup latency: {s.name}")
        try:
            r = s.latency(cfg["latency_k"], cfg["workers"],
                          idle_seconds=cfg["idle_s"] if s.name == "queuectl" else 0.0)
        except Exception as exc:
            log(f"    {s.name} failed: {exc}")
            results["notes"].append(f"{s.name} latency failed: {exc}")
            continue
        lat = r["latencies"]
        out[s.name] = {"k": len(lat), "p50_ms": pct(lat, 50) * 1000,
                       "p99_ms": pct(lat, 99) * 1000, "max_ms": max(lat) * 1000,
                       "idle_cpu": r["idle_cpu"]}
        log(f"    p50 {out[s.name]['p50_ms']:.1f} ms, p99 {out[s.name]['p99_ms']:.1f} ms"
            + (f"; idle CPU per worker {[f'{c:.2%}' for c in r['idle_cpu']['workers']]}, "
               f"supervisor {r['idle_cpu']['supervisor']:.2%}" if r["idle_cpu"] else ""))


def bench_bulk(cfg, target, workdir, results) -> None:
    """The goal's size (`bulk_n`, twice), then one bigger file (`bulk_big_n`):
    a row's cost can grow with the table (its indexes), which one size hides."""
    n, big = cfg["bulk_n"], cfg["bulk_big_n"]
    secs = []
    for i in range(cfg["bulk_reps"]):
        s, status = _bulk_once(target, workdir, n, cfg["status_runs"] if i == 0 else 0)
        secs.append(s)
        if status:
            results["status"]["after bulk"] = dict(jobs=n, **status)
    results["bulk"] = {"n": n, **summary([n / s for s in secs]), "seconds": secs}
    s, _ = _bulk_once(target, workdir, big)
    results["bulk_big"] = {"n": big, "seconds": s, "jobs_per_s": big / s}


def _bulk_once(target, workdir, n: int, status_runs: int = 0) -> tuple[float, dict | None]:
    """One `queuectl enqueue --file` of n trivial lines into a new database,
    whole process: its seconds, and `status` timed on the filled database when
    `status_runs` asks for it."""
    path = workdir / f"bulk-{n}.jsonl"
    if not path.exists():  # written here, in this run's own directory
        path.write_text('{"command": "true"}\n' * n)
    db = target.new("bulk")
    try:
        t = time.perf_counter()
        subprocess.run(qctl(db, "enqueue", "--file", str(path)), check=True,
                       capture_output=True, cwd=workdir)
        s = time.perf_counter() - t
        count = target.query(db, "SELECT COUNT(*) FROM job")[0][0]
        assert count == n, f"enqueued {count}, expected {n}"
        status = time_process(qctl(db, "status"), status_runs) if status_runs else None
    finally:
        target.drop(db)
    log(f"  bulk enqueue: {n:,} jobs in {s:.2f} s = {n / s:,.0f} jobs/s "
        "(whole `queuectl enqueue --file` process)")
    return s, status


def bench_status(cfg, target, results) -> None:
    db = target.new("status")
    try:
        r = time_process(qctl(db, "status"), cfg["status_runs"])
        results["status"]["empty"] = {"jobs": 0, **r}
        log(f"  `queuectl status` on an empty queue: median {r['median_ms']:.0f} ms "
            f"(min {r['min_ms']:.0f}, max {r['max_ms']:.0f}) over {r['runs']} runs")
        r = time_process(qctl(db, "list", "--limit", "20"), cfg["status_runs"])
        results["status"]["list empty"] = {"jobs": 0, "command": "list --limit 20", **r}
        log(f"  `queuectl list --limit 20` on an empty queue: median {r['median_ms']:.0f} ms")
        r = time_process([sys.executable, "-c", "pass"], cfg["status_runs"])
        results["status"]["bare python"] = {"jobs": None, **r}
        r = time_process([sys.executable, "-c", "import peewee"], cfg["status_runs"])
        results["status"]["import peewee"] = {"jobs": None, **r}
    finally:
        target.drop(db)


def bench_scale(cfg, target, workdir, results) -> None:
    """Both databases are made first, then runs alternate between them (small, big,
    small, big, ...) so machine load affects both sizes alike."""
    out = results["scale"] = {}
    dbs = {}
    try:
        for size in cfg["scale_sizes"]:
            completed, backlog = size * 9 // 10, size - size * 9 // 10
            log(f"  scale: {size:,} jobs in the database ({completed:,} completed + "
                f"{backlog:,} pending backlog scheduled a day ahead)")
            q = systems.Queuectl(target, workdir, prefill=(completed, backlog),
                                 label=f"{size:,} jobs in the database")
            dbs[size] = (q, q.prepared("scale"))
        runs: dict[int, list[systems.Run]] = {size: [] for size in dbs}
        for rep in range(cfg["scale_reps"]):
            for size, (q, db) in dbs.items():
                run = q.throughput("true", cfg["scale_n"], cfg["workers"], db=db)
                runs[size].append(run)
                log(f"    run {rep + 1}/{cfg['scale_reps']} with {size:,} jobs in the database: "
                    f"{run.n} jobs in {run.seconds:.2f} s = {run.rate:,.0f} jobs/s")
        for size, (q, db) in dbs.items():
            row = {"n": cfg["scale_n"], **summary([r.rate for r in runs[size]])}
            row["status"] = time_process(qctl(db, "status"), cfg["status_runs"])
            row["list"] = time_process(qctl(db, "list", "--limit", "20"), cfg["status_runs"])
            row["idle_cpu"] = q.idle_cpu(db, cfg["workers"], cfg["idle_s"])
            log(f"    {size:,} jobs: `queuectl status` median {row['status']['median_ms']:.0f} ms, "
                f"`list --limit 20` {row['list']['median_ms']:.0f} ms; "
                "idle CPU per worker "
                + ", ".join(f"{c:.2%}" for c in row["idle_cpu"]["workers"]))
            out[size] = row
    finally:
        for _, db in dbs.values():
            target.drop(db)


# =========================================================================== report

def environment() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                            "queuectl_tui"], capture_output=True, text=True).stdout.strip()
    if dirty:
        commit += " + uncommitted changes in queuectl_tui/"
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit, "cores": os.cpu_count(), "cpu": cpu,
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "load_before": os.getloadavg(), "python_loop_s": python_loop_s(),
            "first_touch_us": first_touch_us()}


def python_loop_s(n: int = 5_000_000, tries: int = 5) -> float:
    """The machine's speed at plain Python, so runs on different days can be set
    side by side: the best of a few timings of one loop."""
    best = float("inf")
    for _ in range(tries):
        t = time.perf_counter()
        total = 0
        for i in range(n):
            total += i
        best = min(best, time.perf_counter() - t)
    return round(best, 3)


def first_touch_us(mib: int = 64) -> float:
    """What the machine charges for memory a process touches for the first time,
    per 4 KiB page: every process start, every `sh` child and SQLite's growing
    page cache pay it. Machines of one kind differ here: 8 us a page was seen on
    a day when `python -c pass` took 50 ms instead of 20."""
    import mmap
    size = mib << 20
    area = mmap.mmap(-1, size)
    t = time.perf_counter()
    for offset in range(0, size, 4096):
        area[offset] = 1
    took = time.perf_counter() - t
    area.close()
    return round(took / (size // 4096) * 1e6, 2)


def targets_table(res: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Issue 13's goals, each with what this run measured and met / not met."""
    rows: list[tuple[str, str, str]] = []
    bb = res.get("blackbox", {}).get("runs", {})
    w = res.get("blackbox", {}).get("workers", 2)

    def med(name: str) -> float | None:
        return bb.get(name, {}).get("median")

    def both(label: str, need: float, value) -> None:
        got = {o: value(o) for o in ORDERS}
        if any(v is None for v in got.values()):
            rows.append((label, "not measured in this run", "-"))
            return
        rows.append((label, " / ".join(f"{got[o]:{',.0f' if need > 10 else '.2f'}}"
                                       f"{'' if need > 10 else 'x'} {o}" for o in ORDERS),
                     _ok(all(v >= need for v in got.values()))))

    def ratio(peer: str):
        return lambda o: (med(f"queuectl x{w} {o}") / med(f"{peer} x{w} {o}")
                          if med(f"queuectl x{w} {o}") and med(f"{peer} x{w} {o}") else None)

    if bb:
        both(f"`true`, {w} workers, black-box: >= 1,200 jobs/s", 1200,
             lambda o: med(f"queuectl x{w} {o}"))
        both(">= 2x huey (SqliteHuey, 2 process workers), same rounds", 2.0, ratio("huey"))
        both(">= 1.5x task-spooler, same rounds", 1.5, ratio("task-spooler"))
        both("1 worker: >= 800 jobs/s", 800, lambda o: med(f"queuectl x1 {o}"))
        cpu = [(c, bb.get(f"queuectl x{c} workers-first", {}).get("worker_cpu_us_per_job"))
               for c in dict.fromkeys((w, 1))]
        cpu = [(c, v) for c, v in cpu if v is not None]
        if cpu:
            rows.append(("worker CPU per job, `sh` child excluded: <= 600 us",
                         " / ".join(f"{v:,.0f} us ({c} worker{'s' if c > 1 else ''})"
                                    for c, v in cpu), _ok(all(v <= 600 for _, v in cpu))))
    st = res.get("status", {})
    sc = res.get("scale", {})
    big = max(sc, key=int) if sc else None
    for what, key, at_big in (("status", "empty", "status"), ("list --limit 20", "list empty",
                                                              "list")):
        got = []
        if key in st:
            got.append(("0 jobs", st[key]["median_ms"]))
        if big is not None and at_big in sc[big]:
            got.append((f"{int(big):,} jobs", sc[big][at_big]["median_ms"]))
        if got:
            rows.append((f"`queuectl {what}` < 100 ms (whole process, .pyc cached)",
                         " / ".join(f"{v:.0f} ms at {where}" for where, v in got),
                         _ok(all(v < 100 for _, v in got))))
    pk = res.get("pickup", {})
    if pk:
        rows.append(("pickup latency p99 < 20 ms (black-box, idle pool)",
                     "; ".join(f"{r['p99_ms']:.1f} ms ({r['k']:,} jobs by {via})"
                               for via, r in pk.items()),
                     _ok(all(r["p99_ms"] < 20 for r in pk.values()))))
        rows.append(("no pickup over 200 ms",
                     "; ".join(f"max {r['max_ms']:.0f} ms, {r['over_200ms']} over ({via})"
                               for via, r in pk.items()),
                     _ok(all(r["over_200ms"] == 0 for r in pk.values()))))
    b = res.get("bulk")
    if b:
        rows.append((f"no regression: bulk enqueue ({b['n']:,} jobs) >= 50,000 jobs/s",
                     f"{b['median']:,.0f} jobs/s", _ok(b["median"] >= 50_000)))
    big = res.get("bulk_big")
    if big:
        rows.append((f"bulk enqueue ({big['n']:,} jobs) >= 50,000 jobs/s (at scale)",
                     f"{big['jobs_per_s']:,.0f} jobs/s", _ok(big["jobs_per_s"] >= 50_000)))
    if rows:
        rows.append(("no regression: console refresh at 1,000,000 jobs < 50 ms",
                     "not measured here: bench/console_bench.py", "-"))
        rows.append(("no regression: PostgreSQL throughput at least as today",
                     "not measured here: python bench/run.py --db postgresql://...", "-"))
    return rows


def _ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def _spread(r: dict[str, Any]) -> str:
    return f"{r['min']:,.0f}–{r['max']:,.0f}" if len(r["runs"]) > 1 else "-"


def headline_markdown(res: dict[str, Any]) -> list[str]:
    bb = res.get("blackbox")
    if not bb:
        return []
    runs, n, w = bb["runs"], bb["n"], bb["workers"]
    loads = [x for r in runs.values() for x in r["load"]]
    reps = max(len(r["runs"]) for r in runs.values())
    L = [f"## Headline: {n:,} trivial jobs (`true`) as a user runs them", "",
         "Black-box: `queuectl enqueue --file` of N lines, then `queuectl worker start "
         f"--count W` (enqueue-first: the clock starts as the pool is launched), or the "
         "pool first, idle, then the enqueue (workers-first: the clock starts at the "
         "enqueue); the end is the last job's `finished_at`, read from the database. "
         "huey: SqliteHuey, consumer with process workers, enqueued through its Python "
         "API (one call per task); task-spooler: W slots, one `tsp` call per job. The spawn "
         f"ceiling: {w} processes doing nothing but start `/bin/sh -c true` and wait for it. "
         f"Every system once per round, {reps} round(s), interleaved; median "
         f"(min–max); 1-minute load average during these runs {min(loads):.2f}–"
         f"{max(loads):.2f}.", "",
         "| system | enqueue-first jobs/s | workers-first jobs/s | load (per run) |",
         "|---|---|---|---|"]

    def cell(name: str) -> str:
        r = runs.get(name)
        if not r:
            return "-"
        fewer = r["rows"][0].get("n", n)
        return f"{r['median']:,.0f}" + (f" ({_spread(r)})" if len(r["runs"]) > 1 else "") \
            + (f" (N = {fewer:,}: see below)" if fewer != n else "")

    labels = [(f"queuectl x{w}", f"queuectl, {w} workers")]
    labels += [(f"{p} x{w}", f"{p}, {w} {'slots' if p == 'task-spooler' else 'workers'}")
               for p in BLACKBOX_PEERS]
    if w != 1:
        labels.append(("queuectl x1", "queuectl, 1 worker"))
    for key, label in labels:
        if not any(f"{key} {o}" in runs for o in ORDERS):
            continue
        ld = [x for o in ORDERS for x in runs.get(f"{key} {o}", {}).get("load", [])]
        L.append(f"| {label} | {cell(f'{key} enqueue-first')} | "
                 f"{cell(f'{key} workers-first')} | {', '.join(f'{x:.1f}' for x in ld)} |")
    for how in measure.SPAWN_HOWS:
        name = f"spawn ceiling ({how}) x{w}"
        if name in runs:
            L.append(f"| spawn ceiling, {w} processes, `{how}` | {cell(name)} | (same) | "
                     f"{', '.join(f'{x:.1f}' for x in runs[name]['load'])} |")
    L.append("")
    if any(r["rows"][0].get("n", n) != n for r in runs.values()):
        L += [f"task-spooler's enqueue-first run holds {systems.TaskSpooler.MAX_QUEUED:,} "
              "jobs, not N: each queued job is a waiting `tsp` client connected to its "
              "server, which serves about 1,000 connections at most (past that, `tsp` "
              "blocks until a job ends, and with every slot held none does).", ""]
    q = {o: runs.get(f"queuectl x{w} {o}", {}).get("median") for o in ORDERS}
    ratios = []
    for peer in [*BLACKBOX_PEERS, *(f"spawn ceiling ({h})" for h in measure.SPAWN_HOWS)]:
        got = [f"{q[o] / _peer_rate(runs, peer, w, o):.2f}x {o}" for o in ORDERS
               if q[o] and _peer_rate(runs, peer, w, o)]
        if got:
            ratios.append(f"{peer}: {', '.join(got)}")
    if ratios:
        L += [f"queuectl ({w} workers) against: " + "; ".join(ratios) + ".", ""]
    cpu = [(name, r) for name, r in runs.items() if "worker_cpu_us_per_job" in r]
    if cpu:
        L += ["Worker CPU per job (workers-first runs, utime + stime of the worker processes "
              "over the run, from /proc): " + "; ".join(
                  f"{name.split()[1][1:]} worker(s) {r['worker_cpu_us_per_job']:,.0f} µs, the "
                  f"`sh` child {r['sh_cpu_us_per_job']:,.0f} µs" for name, r in cpu) + ".", ""]
    return L


def _peer_rate(runs: dict[str, Any], peer: str, w: int, order: str) -> float | None:
    """A peer's median for one order (the spawn ceiling has no order)."""
    r = runs.get(f"{peer} x{w} {order}") or runs.get(f"{peer} x{w}")
    return r["median"] if r else None


def pickup_markdown(res: dict[str, Any]) -> list[str]:
    pk = res.get("pickup")
    if not pk:
        return []
    L = ["## Pickup latency, black-box", "",
         "A pool started by `queuectl worker start`, idle; jobs enqueued one at a time with "
         "20–40 ms pauses, by one process calling the engine (`engine`) or by one `queuectl "
         "enqueue` process each (`cli`). Latency = `started_at` − `created_at` (queuectl's own "
         "stamps: `created_at` before the enqueue's transaction, `started_at` inside the "
         "claim's). For the slowest jobs it is split at the moment the enqueue returned: "
         "`enqueue` (its own transaction and commit) and `after` (the worker's wake-up "
         "and claim); a CLI process stamps that moment as its `main` returns, before the "
         "interpreter's exit.", "",
         "| enqueued by | jobs | p50 ms | p99 ms | max ms | over 200 ms | load | slowest "
         "(enqueue + after, ms) |", "|---|---|---|---|---|---|---|---|"]
    for via, r in pk.items():
        slow = ", ".join(f"{j['latency']:.0f} ({j['enqueue']:.0f} + {j['after_enqueue']:.0f})"
                         for j in r["slowest"][:3])
        L.append(f"| {via} | {r['k']:,} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                 f"{r['max_ms']:.1f} | {r['over_200ms']} | {r['load']:.2f} | {slow} |")
    return L + [""]


def write_markdown(res: dict[str, Any], path: Path) -> None:
    env, cfg = res["env"], res["config"]
    L = [f"# queuectl benchmark results ({res['profile']})", "",
         f"- Date: {env['date']}, commit `{env['commit']}`, {env['cores']} cores ({env['cpu']}), "
         f"Python {env['python']}, SQLite {env['sqlite']}, backend: {res['backend']}",
         f"- Workers: {cfg['workers']}; load average (1, 5, 15 min) before the run: "
         + ", ".join(f"{x:.2f}" for x in env["load_before"])
         + ("; after: " + ", ".join(f"{x:.2f}" for x in env["load_after"])
            if env.get("load_after") else "")
         + f"; {res.get('elapsed_s', 0) / 60:.1f} minutes in all",
         *([f"- Machine speed: a plain Python loop of 5,000,000 additions in "
            f"{env['python_loop_s']:.2f} s (best of 5), a first touch of a memory page "
            f"{env['first_touch_us']:.2f} us (lower is faster): compare absolute figures "
            "across runs only beside these"] if env.get("first_touch_us") else []),
         f"- Command: `{res['command']}`", ""]
    if res.get("notes"):
        L += ["Notes:", ""] + [f"- {n}" for n in res["notes"]] + [""]
    L += headline_markdown(res)
    rows = targets_table(res)
    if rows:
        L += ["## Issue 13 goals", "", "| goal | measured | |", "|---|---|---|"]
        L += [f"| {a} | {b} | {c} |" for a, b, c in rows] + [""]
    L += pickup_markdown(res)
    tp = res.get("throughput")
    if tp:
        L += ["## In-process throughput (the engine's `enqueue_many` from the benchmark "
              "process into pre-started idle workers; the clock starts at the enqueue)", "",
              f"Repeats per figure: {cfg['reps']} (median shown, min–max beside it).", "",
              "| workload | system | N | jobs/s (median) | spread | queuectl (full) vs it "
              "| queuectl (normal) vs it |", "|---|---|---|---|---|---|---|"]
        for workload, row in tp.items():
            qf = row.get("queuectl (full)", {}).get("median")
            qn = row.get("queuectl (normal)", {}).get("median")
            for name, r in row.items():
                L.append(f"| `{workload}` | {name} | {r['n']:,} | {r['median']:,.0f} | "
                         f"{_spread(r)} | {qf / r['median']:.2f}x | {qn / r['median']:.2f}x |")
        L.append("")
    lat = res.get("latency")
    if lat:
        L += ["## In-process pickup latency (enqueue to start, one job at a time, idle "
              "workers)", "",
              "| system | jobs | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|"]
        for name, r in lat.items():
            L.append(f"| {name} | {r['k']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['max_ms']:.1f} |")
        q = lat.get("queuectl", {}).get("idle_cpu")
        if q:
            L += ["", f"Idle CPU over {cfg['idle_s']:g} s: workers "
                  + ", ".join(f"{c:.2%}" for c in q["workers"])
                  + f" of a core each; supervisor {q['supervisor']:.2%}."]
        L.append("")
    if res.get("bulk") or res.get("status"):
        L += ["## Bulk enqueue and headless command time", "", "| measure | value |",
              "|---|---|"]
        b = res.get("bulk")
        if b:
            L.append(f"| `queuectl enqueue --file` with {b['n']:,} jobs (whole process) | "
                     f"{b['median']:,.0f} jobs/s ({', '.join(f'{s:.2f}' for s in b['seconds'])} s) |")
        big = res.get("bulk_big")
        if big:
            L.append(f"| `queuectl enqueue --file` with {big['n']:,} jobs (whole process) | "
                     f"{big['jobs_per_s']:,.0f} jobs/s ({big['seconds']:.2f} s) |")
        for key, r in res.get("status", {}).items():
            what = {"bare python": "`python -c pass` (interpreter floor, same venv)",
                    "import peewee": "`python -c 'import peewee'` (the ORM and, when installed, the "
                                     "psycopg2 it imports; queuectl on SQLite skips psycopg2)"}.get(
                key) or f"`queuectl {r.get('command', 'status')}`, {r['jobs']:,} jobs"
            L.append(f"| {what} | median {r['median_ms']:.0f} ms (min {r['min_ms']:.0f}, "
                     f"max {r['max_ms']:.0f}, {r['runs']} runs) |")
        for size, r in res.get("scale", {}).items():
            for command, key in (("status", "status"), ("list --limit 20", "list")):
                if key in r:
                    L.append(f"| `queuectl {command}`, {int(size):,} jobs | median "
                             f"{r[key]['median_ms']:.0f} ms (min {r[key]['min_ms']:.0f}, "
                             f"max {r[key]['max_ms']:.0f}) |")
        L.append("")
    sc = res.get("scale")
    if sc:
        L += [f"## Scale (`true`, 2 workers, durability {res.get('default_durability')} (the "
              "default); 90% completed history with 3 "
              "events each, 10% pending backlog scheduled a day ahead)", "",
              "| jobs already in the database | N | jobs/s (median) | spread | idle CPU per worker |",
              "|---|---|---|---|---|"]
        for size, r in sc.items():
            idle = ", ".join(f"{c:.2%}" for c in r.get("idle_cpu", {}).get("workers", []))
            L.append(f"| {int(size):,} | {r['n']:,} | {r['median']:,.0f} | {_spread(r)} | "
                     f"{idle or '-'} |")
        L.append("")
    path.write_text("\n".join(L))


def write_plot(res: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not available: no plot"
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    colors = {"queuectl (full)": "#1f77b4", "queuectl (normal)": "#6baed6", "huey": "#ff7f0e",
              "task-spooler": "#2ca02c", "rq": "#d62728", "queuectl": "#1f77b4"}
    ax = axes[0][0]
    bb = res.get("blackbox", {}).get("runs", {})
    if bb:
        w = res["blackbox"]["workers"]
        keys = [k for k in (f"queuectl x{w}", *(f"{p} x{w}" for p in BLACKBOX_PEERS),
                            "queuectl x1") if any(f"{k} {o}" in bb for o in ORDERS)]
        for j, order in enumerate(ORDERS):
            vals = [bb.get(f"{k} {order}", {}).get("median", 0) for k in keys]
            xs = [i + (j - 0.5) * 0.4 for i in range(len(keys))]
            ax.bar(xs, vals, 0.4, label=order)
            for x, v in zip(xs, vals):
                ax.text(x, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(keys)), keys)
        for how, style in zip(measure.SPAWN_HOWS, (":", "-.")):
            ceiling = bb.get(f"spawn ceiling ({how}) x{w}", {}).get("median")
            if ceiling:
                ax.axhline(ceiling, ls=style, color="grey", lw=1,
                           label=f"spawn ceiling ({how}) {ceiling:,.0f}")
        ax.axhline(1200, ls="--", color="black", lw=1, label="target 1,200/s")
        ax.legend(fontsize=7)
    ax.set_title(f"black-box `true` x {res.get('blackbox', {}).get('n', 0):,} (headline)")
    ax.set_ylabel("jobs/s (median)")
    ax = axes[0][1]
    row = res.get("throughput", {}).get("true", {})
    names = list(row)
    vals = [row[n]["median"] for n in names]
    errs = [[row[n]["median"] - row[n]["min"] for n in names],
            [row[n]["max"] - row[n]["median"] for n in names]]
    ax.bar(names, vals, yerr=errs, color=[colors.get(n, "grey") for n in names], capsize=4)
    ax.set_title(f"in-process `true`, {res['config']['workers']} workers")
    ax.set_ylabel("jobs/s (median, min–max)")
    ax.tick_params(axis="x", labelrotation=15)
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    ax = axes[1][0]
    lat = {**{f"queuectl by {via} (black-box)": r for via, r in res.get("pickup", {}).items()},
           **{f"{n} (in-process)": r for n, r in res.get("latency", {}).items()}}
    if lat:
        names = list(lat)
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [lat[n]["p50_ms"] for n in names], 0.4, label="p50")
        ax.bar([i + 0.2 for i in x], [lat[n]["p99_ms"] for n in names], 0.4, label="p99")
        ax.set_xticks(list(x), names, fontsize=7, rotation=15)
        ax.axhline(20, ls="--", color="black", lw=1)
        ax.set_yscale("log")
        ax.legend()
    ax.set_title("pickup latency (enqueue to start), ms; p99 target 20")
    ax = axes[1][1]
    sc = res.get("scale", {})
    if sc:
        names = [f"{int(s):,} jobs" for s in sc]
        vals = [r["median"] for r in sc.values()]
        ax.bar(names, vals, color="#1f77b4",
               yerr=[[r["median"] - r["min"] for r in sc.values()],
                     [r["max"] - r["median"] for r in sc.values()]], capsize=4)
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_title(f"scale: `true` throughput vs jobs in the DB ({res.get('default_durability')})")
    ax.set_ylabel("jobs/s")
    fig.suptitle(f"queuectl benchmark, {res['env']['date']}, {res['env']['cores']} cores, "
                 f"commit {res['env']['commit']} ({res['profile']})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


# =========================================================================== main

def use_ref(ref: str) -> str:
    """Export queuectl_tui/ at `ref` and put it first on the path of this process and
    every queuectl process it starts (workers, CLI), so uncommitted edits don't count."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], check=True,
                         capture_output=True, text=True).stdout.strip()
    dest = Path(tempfile.mkdtemp(prefix=f"queuectl-{sha}-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", sha, "queuectl_tui"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    _put_first(dest)
    return f"{sha} (exported with --ref {ref})"


def use_tree(tree: Path) -> str:
    """Measure the queuectl_tui/ of another checkout, in this process and every
    queuectl process it starts."""
    tree = tree.resolve()
    if not (tree / "queuectl_tui" / "__init__.py").is_file():
        raise SystemExit(f"--tree {tree}: no queuectl_tui/ there")
    _put_first(tree)
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    return f"{commit} (checkout {tree})"


def _put_first(path: Path) -> None:
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(path), os.environ.get("PYTHONPATH")) if p)
    sys.path.insert(0, str(path))
    for name in [m for m in sys.modules if m.startswith("queuectl_tui")]:
        del sys.modules[name]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small smoke run (< 60 s)")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections (default all: {','.join(SECTIONS)})")
    ap.add_argument("--peers", default="huey,task-spooler,rq",
                    help="comma-separated peers to compare, or 'none'")
    ap.add_argument("--db", help="a postgresql:// URL to benchmark queuectl on PostgreSQL "
                    "(a fresh database per run on that server); default: SQLite files")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", help="results directory (default bench/results, "
                    "or bench/results/quick with --quick)")
    ap.add_argument("--no-install", action="store_true", help="do not pip/apt-get install peers")
    ap.add_argument("--ref", help="benchmark queuectl as committed at this git ref (e.g. HEAD), "
                    "exported to a temporary directory, instead of the working tree")
    ap.add_argument("--tree", help="benchmark the queuectl of this checkout (a directory "
                    "holding queuectl_tui/), e.g. /work/main")
    args = ap.parse_args(argv)
    if args.ref and args.tree:
        ap.error("--ref and --tree both say what to measure: give one")
    source = "working tree"
    if args.ref:
        source = use_ref(args.ref)
    elif args.tree:
        source = use_tree(Path(args.tree))

    profile = "quick" if args.quick else "full"
    cfg = {**PROFILES[profile], "workers": args.workers}
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {', '.join(sorted(unknown))}")
    wanted = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",")]
    out = Path(args.out) if args.out else BENCH / "results" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    notes = ensure_peers(install=not args.no_install) if (wanted or "throughput" in sections) \
        else []
    notes = [n for n in notes if any(p in n for p in wanted) or "matplotlib" in n]
    for n in notes:
        log(f"note: {n}")
    workdir = Path(tempfile.mkdtemp(prefix="queuectl-bench-"))
    target = targets.target_for(args.db, workdir)
    env = environment()
    from queuectl_tui.engine import config as qconfig
    default_durability = qconfig.KEYS["durability"].default
    if args.ref or args.tree:
        env["commit"] = source
    res: dict[str, Any] = {
        "profile": profile, "env": env, "config": cfg, "notes": notes,
        "backend": target.name, "status": {}, "default_durability": default_durability,
        "command": "python bench/run.py" + (" --quick" if args.quick else "")
        + ("" if args.only == ",".join(SECTIONS) else f" --only {args.only}")
        + (f" --db {args.db}" if args.db else "") + (f" --ref {args.ref}" if args.ref else "")
        + (f" --tree {args.tree}" if args.tree else "")}
    peers = make_peers(workdir, wanted, res["notes"]) if \
        {"blackbox", "throughput", "latency"} & set(sections) else []
    log(f"queuectl benchmark ({profile}) on {target.name}; work dir {workdir}; "
        f"load average {', '.join(f'{x:.2f}' for x in env['load_before'])}")
    if target.name != "sqlite" and {"blackbox", "pickup"} & set(sections):
        res["notes"].append("the black-box sections run on SQLite files only: skipped")
        sections = [s for s in sections if s not in ("blackbox", "pickup")]
    try:
        if "blackbox" in sections:
            bench_blackbox(cfg, workdir, peers, res)
        if "pickup" in sections:
            bench_pickup(cfg, workdir, res)
        if "throughput" in sections:
            bench_throughput(cfg, target, workdir, peers, res)
        if "latency" in sections:
            bench_latency(cfg, target, workdir, peers, res)
        if "status" in sections:
            bench_status(cfg, target, res)
        if "bulk" in sections:
            bench_bulk(cfg, target, workdir, res)
        if "scale" in sections:
            bench_scale(cfg, target, workdir, res)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    res["env"]["load_after"] = os.getloadavg()
    res["elapsed_s"] = round(time.monotonic() - started, 1)
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str))
    write_markdown(res, out / "results.md")
    note = write_plot(res, out / "results.png")
    if note:
        log(f"note: {note}")
    log(f"\nwrote {out / 'results.md'}, results.json, results.png in {res['elapsed_s']:.0f} s\n")
    log((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
