"""Finish-hook throughput, black-box: do hooks keep up with a busy pool?

    python bench/hooks.py                  # 1,000 `true` jobs, 3 rounds
    python bench/hooks.py --quick          # 200 jobs, 1 round: a smoke run of a few seconds
    python bench/hooks.py --ref 914b808    # queuectl as committed at a ref (A/B)

Each round: a fresh SQLite file (or a fresh PostgreSQL database with `--db
URL`), `queuectl config set finish-hook` to a trivial hook (a shell builtin
appending the job's id to a file), `queuectl enqueue --file` of N `true` jobs,
then `queuectl worker start --count 2`. The jobs' figures come from the
database (first `started_at` to last `finished_at`); the hooks' end is when the
file holds N lines and the outbox (`hook_run`) is empty, polled every 20 ms.
The hooks' rate is N over the time from the first job's start to the last
hook; the lag is how long after the last job the last hook ran. Every job
must get its hook: a round where some hook never ran fails the run.

Then the hooks' own ceiling, apart from the jobs' rate (a loaded machine runs
the jobs slower than the 1,000 a second a quiet one does): N jobs enqueued and
cancelled, so N hooks wait at once, and a pool started; the backlog rate is N
over the time from the first hook to the last, and the pool's CPU per hook
(supervisor, idle workers and the hooks' shells, from getrusage) says what a
quiet machine's cores allow.

Results go to bench/results/hooks/results.json (`--quick`: not written).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "hooks" / "results.json"
POLL_S = 0.02
HOOK = 'echo "$QUEUECTL_JOB_ID" >> {out}'


def export_ref(ref: str, dest: Path) -> tuple[Path, str]:
    """queuectl_tui/ as committed at `ref`, unpacked under `dest`."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True,
                         capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "queuectl_tui"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest, sha


class Target:
    """Where one round's jobs live: a SQLite file, or a fresh PostgreSQL database."""

    def __init__(self, tmp: Path, pg_url: str | None) -> None:
        self.pg_url = pg_url
        self.name = None
        if pg_url is None:
            self.url = str(tmp / "q.db")
            return
        import psycopg2
        self.name = f"bench_hooks_{uuid.uuid4().hex[:8]}"
        self._admin("CREATE DATABASE " + self.name)
        self.url = pg_url.rsplit("/", 1)[0] + "/" + self.name

    def _admin(self, statement: str) -> None:
        import psycopg2
        conn = psycopg2.connect(self.pg_url)
        conn.autocommit = True
        try:
            conn.cursor().execute(statement)
        finally:
            conn.close()

    def query(self, sql: str) -> tuple:
        if self.name is None:
            import sqlite3
            conn = sqlite3.connect(self.url, timeout=30)
        else:
            import psycopg2
            conn = psycopg2.connect(self.url)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return cur.fetchone()
        finally:
            conn.close()

    def drop(self) -> None:
        if self.name is not None:
            self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def one_round(repo: Path, jobs: int, workers: int, pg_url: str | None,
              timeout: float) -> dict:
    result = {}
    for how in (_measure, _backlog):
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            target = Target(tmp, pg_url)
            try:
                result.update(how(repo, tmp, target, jobs, workers, timeout))
            finally:
                target.drop()
    return result


def _backlog(repo: Path, tmp: Path, target: Target, jobs: int, workers: int,
             timeout: float) -> dict:
    """The hooks' own ceiling, whatever the jobs' rate: N jobs enqueued and
    cancelled (`cancel` queues N hooks at once), then a pool started; the rate
    is N over the time from the first hook's line to the outbox's last row."""
    env = {**os.environ, "QUEUECTL_DB": target.url, "PYTHONPATH": str(repo)}
    out = tmp / "hooks.out"

    def cli(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "queuectl_tui", *args], env=env, cwd=tmp,
                       check=True, stdout=subprocess.DEVNULL)

    spec = tmp / "jobs.jsonl"
    ids = [f"j{i}" for i in range(jobs)]
    spec.write_text("".join(json.dumps({"command": "true", "id": i, "delay": 3600}) + "\n"
                            for i in ids))
    cli("config", "set", "finish-hook", HOOK.format(out=out))
    cli("enqueue", "--file", str(spec))
    cli("cancel", *ids)
    cpu_before = _children_cpu()
    pool = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "worker", "start",
                             "--count", str(workers)], env=env, cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    first = done = None
    try:
        while time.monotonic() < deadline:
            if first is None and out.exists():
                first = time.time()
            lines = out.read_bytes().count(b"\n") if out.exists() else 0
            if lines >= jobs and target.query("SELECT COUNT(*) FROM hook_run")[0] == 0:
                done = time.time()
                break
            time.sleep(POLL_S)  # a poll, not synchronisation: the deadline bounds it
    finally:
        pool.terminate()
        pool.wait(60)
    if first is None or done is None:
        return {"backlog_hooks_per_s": None}
    return {"backlog_hooks_s": round(done - first, 3),
            "backlog_hooks_per_s": round(jobs / max(done - first, POLL_S), 1),
            "backlog_pool_cpu_ms_per_hook": round((_children_cpu() - cpu_before) / jobs * 1e3, 3)}


def _children_cpu() -> float:
    """CPU seconds of every waited-for descendant: the pool, its workers, the
    hooks' shells (the pool waits for those). Load elsewhere disturbs it far
    less than it disturbs rates."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measure(repo: Path, tmp: Path, target: Target, jobs: int, workers: int,
             timeout: float) -> dict:
    # cwd: `python -m` puts the working directory first on sys.path, so run from
    # the temporary folder or the checkout we stand in gets measured.
    env = {**os.environ, "QUEUECTL_DB": target.url, "PYTHONPATH": str(repo)}
    out = tmp / "hooks.out"

    def cli(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "queuectl_tui", *args], env=env, cwd=tmp,
                       check=True, stdout=subprocess.DEVNULL)

    spec = tmp / "jobs.jsonl"
    spec.write_text("".join(json.dumps({"command": "true", "id": f"j{i}"}) + "\n"
                            for i in range(jobs)))
    cli("config", "set", "finish-hook", HOOK.format(out=out))
    cli("enqueue", "--file", str(spec))
    log = open(tmp / "pool.log", "wb")
    launched = time.time()
    pool = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "worker", "start",
                             "--count", str(workers)], env=env, cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + timeout
    hooks_done = None
    try:
        while time.monotonic() < deadline:
            lines = out.read_bytes().count(b"\n") if out.exists() else 0
            if lines >= jobs and target.query("SELECT COUNT(*) FROM hook_run")[0] == 0:
                hooks_done = time.time()
                break
            time.sleep(POLL_S)  # a poll, not synchronisation: the deadline bounds it
    finally:
        pool.terminate()
        pool.wait(60)
        log.close()
    first, last, completed = target.query(
        "SELECT MIN(started_at), MAX(finished_at), "
        "SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END) FROM job")
    ran = set(out.read_text().split()) if out.exists() else set()
    missing = jobs - len(ran & {f"j{i}" for i in range(jobs)})
    result = {"jobs": jobs, "completed": completed, "hooks_missing": missing,
              "start_to_first_job_s": round(first - launched, 3),
              "jobs_s": round(last - first, 3), "jobs_per_s": round(jobs / (last - first), 1),
              "hook_runs": len(out.read_text().splitlines()) if out.exists() else 0}
    if hooks_done is None:
        result.update(hooks_s=None, hooks_per_s=None, hook_lag_s=None,
                      note=f"hooks not all done within {timeout:g} s")
    else:
        result.update(hooks_s=round(hooks_done - first, 3),
                      hooks_per_s=round(jobs / (hooks_done - first), 1),
                      hook_lag_s=round(hooks_done - last, 3))
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="200 jobs, 1 round, nothing written")
    ap.add_argument("--jobs", type=int, help="jobs per round (default 1,000; --quick 200)")
    ap.add_argument("--rounds", type=int, help="rounds (default 3; --quick 1)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--db", help="a PostgreSQL URL (a fresh database is made per round)")
    ap.add_argument("--ref", help="measure queuectl as committed at this git ref")
    ap.add_argument("--timeout", type=float, help="seconds a round may take (default 120)")
    ap.add_argument("--out", type=Path, help=f"results file (default {RESULTS})")
    args = ap.parse_args()
    jobs = args.jobs or (200 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as export:
        repo, source = ROOT, "working tree"
        if args.ref:
            repo, sha = export_ref(args.ref, Path(export))
            source = f"{sha} (--ref {args.ref})"
        runs = []
        for i in range(rounds):
            load = os.getloadavg()[0]
            run = one_round(repo, jobs, args.workers, args.db, args.timeout or 120.0)
            run["load_before"] = round(load, 2)
            runs.append(run)
            print(json.dumps(run), flush=True)
    failed = [r for r in runs if r["hooks_missing"] or r["hooks_s"] is None]
    rates = [r["hooks_per_s"] for r in runs if r["hooks_per_s"]]
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "source": source,
        "backend": "postgresql" if args.db else "sqlite", "workers": args.workers,
        "cores": os.cpu_count(), "python": platform.python_version(), "runs": runs,
        "median_jobs_per_s": statistics.median(r["jobs_per_s"] for r in runs),
        "median_hooks_per_s": statistics.median(rates) if rates else None,
        "median_hook_lag_s": statistics.median(r["hook_lag_s"] for r in runs
                                               if r["hook_lag_s"] is not None)
        if rates else None,
        "median_backlog_hooks_per_s": statistics.median(
            r["backlog_hooks_per_s"] or 0 for r in runs),
    }
    print(f"{source}: jobs {summary['median_jobs_per_s']}/s, hooks "
          f"{summary['median_hooks_per_s']}/s, last hook {summary['median_hook_lag_s']} s "
          f"after the last job; a backlog of {jobs} hooks at "
          f"{summary['median_backlog_hooks_per_s']}/s (medians of {rounds})")
    if not args.quick or args.out:
        path = args.out or RESULTS
        path.parent.mkdir(parents=True, exist_ok=True)
        history = json.loads(path.read_text()) if path.exists() else []
        history.append(summary)
        path.write_text(json.dumps(history, indent=1) + "\n")
        print(f"written to {path}")
    if failed:
        print(f"FAILED: {len(failed)} round(s) left hooks not run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
