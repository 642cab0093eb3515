"""The queues under test, each behind the same small interface.

    system.throughput(command, n, workers) -> Run (t0 = first enqueue, t1 = last job done)
    system.latency(k, workers)             -> list of enqueue-to-start seconds

Each system starts its workers first and waits until they are idle, then the
clock starts at the first enqueue and stops when the last job has finished.
Job end times come from the system's own records wherever it keeps them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measure import descendants, idle_cpu, stop, wait_for

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LATENCY_GAP_S = (0.02, 0.04)  # random pause between latency jobs: workers are idle again


@dataclass
class Run:
    n: int
    t0: float
    t1: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0

    @property
    def rate(self) -> float:
        return self.n / self.seconds


class Skip(Exception):
    """This system cannot run here; the message says why."""


# =========================================================================== queuectl

class Queuectl:
    """queuectl with its own supervisor (`queuectl worker start`) on a Target."""

    def __init__(self, target, workdir: Path, durability: str = "full",
                 prefill: tuple[int, int] = (0, 0), label: str = "queuectl") -> None:
        self.target = target
        self.workdir = workdir
        self.durability = durability
        self.prefill = prefill
        self.name = label

    def _cli(self, db: str, *args: str, **kw) -> subprocess.CompletedProcess:
        # cwd: `python -m` puts the working directory first on sys.path; run from the
        # work dir so the installed queuectl (or $PYTHONPATH) is what gets measured.
        return subprocess.run([sys.executable, "-m", "queuectl_tui", "--db", db, *args],
                              check=True, capture_output=True, text=True, cwd=self.workdir,
                              **kw)

    def _prepare(self, tag: str) -> str:
        db = self.target.new(tag)
        self._cli(db, "config", "set", "durability", self.durability)
        if any(self.prefill):
            t = time.monotonic()
            self.target.prefill(db, *self.prefill)
            print(f"      prefilled {sum(self.prefill):,} jobs in {time.monotonic() - t:.1f} s",
                  flush=True)
        return db

    def _start_workers(self, db: str, workers: int) -> tuple[subprocess.Popen, list[int]]:
        since = time.time()
        log = open(self.workdir / "queuectl-supervisor.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "queuectl_tui", "--db", db, "worker",
                                 "start", "--count", str(workers)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                cwd=self.workdir, start_new_session=True)
        sql = "SELECT pid FROM worker WHERE state = 'idle' AND started_at >= ?"
        wait_for("queuectl workers to start",
                 lambda: len(self.target.query(db, sql, (since - 1,))) >= workers
                 or proc.poll() is not None, 30)
        if proc.poll() is not None:
            raise RuntimeError(f"queuectl supervisor exited with {proc.returncode}")
        time.sleep(0.3)  # let them settle into the idle loop
        pids = [r[0] for r in self.target.query(db, sql, (since - 1,))]
        return proc, pids

    def _open_queue(self, db: str):
        from queuectl_tui.engine.queue import Queue
        from queuectl_tui.engine.storage.opening import open_database
        return Queue(open_database(db))

    def prepared(self, tag: str) -> str:
        """A fresh database with this system's config and prefill; caller drops it."""
        return self._prepare(tag)

    def throughput(self, command: str, n: int, workers: int, db: str | None = None) -> Run:
        from queuectl_tui.engine.jobspec import from_mapping
        own = db is None
        db = db or self._prepare("tp")
        try:
            proc, _ = self._start_workers(db, workers)
            try:
                queue = self._open_queue(db)
                first = self.target.query(db, "SELECT COALESCE(MAX(seq), 0) FROM job")[0][0]
                specs = [from_mapping({"command": command}) for _ in range(n)]
                t0 = time.time()
                queue.enqueue_many(specs)
                enq = time.time() - t0
                queue.opened.close()
                sql = ("SELECT COUNT(*), MAX(finished_at) FROM job "
                       "WHERE state = 'completed' AND seq > ?")
                wait_for(f"{n} queuectl jobs",
                         lambda: self.target.query(db, sql, (first,))[0][0] >= n,
                         max(60, n * 0.05))
                t1 = self.target.query(db, sql, (first,))[0][1]
            finally:
                stop(proc)
            return Run(n, t0, t1, {"enqueue_s": enq})
        finally:
            if own:
                self.target.drop(db)

    def idle_cpu(self, db: str, workers: int, seconds: float) -> dict[str, Any]:
        """Start workers on an existing database, let them go idle, measure their CPU."""
        proc, pids = self._start_workers(db, workers)
        try:
            time.sleep(1.0)
            shares = idle_cpu([proc.pid, *pids], seconds)
        finally:
            stop(proc)
        return {"supervisor": shares[proc.pid], "workers": [shares[p] for p in pids]}

    def latency(self, k: int, workers: int, idle_seconds: float = 0.0) -> dict[str, Any]:
        """k jobs one at a time, workers idle in between; then idle CPU of the workers."""
        from queuectl_tui.engine.jobspec import from_mapping
        db = self._prepare("lat")
        try:
            proc, pids = self._start_workers(db, workers)
            try:
                cpu = {}
                if idle_seconds:
                    shares = idle_cpu([proc.pid, *pids], idle_seconds)
                    cpu = {"supervisor": shares[proc.pid],
                           "workers": [shares[p] for p in pids]}
                queue = self._open_queue(db)
                for _ in range(k):
                    queue.enqueue(from_mapping({"command": "true"}))
                    time.sleep(random.uniform(*LATENCY_GAP_S))
                queue.opened.close()
                sql = "SELECT COUNT(*) FROM job WHERE state = 'completed'"
                wait_for("latency jobs", lambda: self.target.query(db, sql)[0][0] >= k, 30)
                rows = self.target.query(
                    db, "SELECT started_at - created_at FROM job WHERE state = 'completed'")
            finally:
                stop(proc)
            return {"latencies": [r[0] for r in rows], "idle_cpu": cpu}
        finally:
            self.target.drop(db)


# =========================================================================== huey

class Huey:
    """huey's SqliteHuey, consumer with process workers (`-k process -w W`)."""

    name = "huey"
    # Same idle probe as queuectl (5 ms) and little backoff, so huey is not
    # handicapped by its default 0.1 s..10 s polling.
    FLAGS = ["-k", "process", "-d", "0.005", "-m", "0.05", "-b", "1.15", "-n", "-C", "-q"]

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        try:
            import huey  # noqa: F401
        except ImportError:
            raise Skip("huey is not installed") from None

    def _tasks(self) -> tuple[Any, str, dict[str, str]]:
        """A fresh huey database, and peer_tasks imported on it (for enqueueing here)."""
        path = str(self.workdir / f"huey-{uuid.uuid4().hex[:6]}.db")
        env = {**os.environ, "BENCH_HUEY_DB": path,
               "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")])}
        os.environ["BENCH_HUEY_DB"] = path
        sys.modules.pop("peer_tasks", None)
        sys.path.insert(0, str(BENCH))
        import peer_tasks
        return peer_tasks, path, env

    def _consumer(self, workers: int, env: dict[str, str]) -> subprocess.Popen:
        log = open(self.workdir / "huey.log", "ab")
        return subprocess.Popen([sys.executable, "-m", "huey.bin.huey_consumer",
                                 "peer_tasks.huey", "-w", str(workers), *self.FLAGS],
                                env=env, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)

    def _start(self, workers: int) -> tuple[subprocess.Popen, Any, str]:
        peer_tasks, path, env = self._tasks()
        proc = self._consumer(workers, env)
        # Warm-up task: the consumer is ready when it has run one.
        peer_tasks.huey_run("true")
        wait_for("huey consumer to start",
                 lambda: peer_tasks.huey.result_count() >= 1 or proc.poll() is not None, 30)
        if proc.poll() is not None:
            raise RuntimeError(f"huey consumer exited with {proc.returncode}")
        peer_tasks.huey.flush()
        time.sleep(0.5)
        return proc, peer_tasks, path

    def _results(self, tasks) -> list[tuple[float, float, float]]:
        h = tasks.huey
        return [h.serializer.deserialize(v) for v in h.all_results().values()]

    def _enqueue(self, tasks, command: str, n: int) -> float:
        t = time.time()
        for _ in range(n):  # huey has no bulk enqueue: one call per task
            tasks.huey_run(command)
        return time.time() - t

    def _wait_done(self, tasks, n: int) -> float:
        """The end of the last task, once all n have a result."""
        wait_for(f"{n} huey tasks", lambda: tasks.huey.result_count() >= n, max(60, n * 0.05))
        return max(r[2] for r in self._results(tasks))

    def throughput(self, command: str, n: int, workers: int) -> Run:
        return self.blackbox(command, n, workers, "workers-first")

    def blackbox(self, command: str, n: int, workers: int, order: str) -> Run:
        """workers-first: the consumer is up and idle, the clock starts at the first
        enqueue. enqueue-first: n tasks wait in the database, the clock starts as the
        consumer is launched (its start-up counts, as queuectl's pool start-up does)."""
        if order == "workers-first":
            proc, tasks, path = self._start(workers)
            try:
                t0 = time.time()
                enq = self._enqueue(tasks, command, n)
                t1 = self._wait_done(tasks, n)
            finally:
                stop(proc, signal.SIGINT)
                _unlink_db(path)
            return Run(n, t0, t1, {"enqueue_s": enq})
        tasks, path, env = self._tasks()
        proc = None
        try:
            enq = self._enqueue(tasks, command, n)
            t0 = time.time()
            proc = self._consumer(workers, env)
            t1 = self._wait_done(tasks, n)
        finally:
            if proc is not None:
                stop(proc, signal.SIGINT)
            _unlink_db(path)
        return Run(n, t0, t1, {"enqueue_s": enq})

    def latency(self, k: int, workers: int, idle_seconds: float = 0.0) -> dict[str, Any]:
        proc, tasks, path = self._start(workers)
        try:
            cpu = {}
            if idle_seconds:
                pids = descendants(proc.pid)
                shares = idle_cpu(pids, idle_seconds)
                cpu = {"total": sum(shares.values()), "processes": len(pids)}
            for _ in range(k):
                tasks.huey_run("true", time.time())
                time.sleep(random.uniform(*LATENCY_GAP_S))
            wait_for("huey latency tasks", lambda: tasks.huey.result_count() >= k, 30)
            lat = [started - enq for enq, started, _ in self._results(tasks)]
        finally:
            stop(proc, signal.SIGINT)
            _unlink_db(path)
        return {"latencies": lat, "idle_cpu": cpu}


def _unlink_db(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


# =========================================================================== task-spooler

class TaskSpooler:
    """task-spooler (`tsp`, or `ts` on some systems) with W slots; one `tsp` call per job."""

    name = "task-spooler"
    # Each queued job is a waiting `tsp` client with a connection open to the server,
    # which select()s on at most ~1,000 of them: past that, `tsp` blocks until a job
    # ends. So enqueue-first (nothing runs until the clock starts) holds at most this.
    MAX_QUEUED = 900

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.binary = tsp_binary()
        if self.binary is None:
            raise Skip("task-spooler (tsp/ts) is not installed")

    def _env(self, n: int, sock: Path) -> dict[str, str]:
        return {**os.environ, "TS_SOCKET": str(sock), "TMPDIR": str(sock.parent),
                "TS_MAXFINISHED": str(n + 100), "TS_MAXCONN": str(n + 100)}

    def throughput(self, command: str, n: int, workers: int) -> Run:
        return self.blackbox(command, n, workers, "workers-first")

    def blackbox(self, command: str, n: int, workers: int, order: str) -> Run:
        """workers-first: the server runs with W slots, the clock starts at the first
        `tsp` call. enqueue-first: a first job holding all W slots (it waits on a
        FIFO) keeps the jobs queued until the clock starts and the FIFO is opened;
        n is capped at MAX_QUEUED there (see above)."""
        if order == "enqueue-first":
            n = min(n, self.MAX_QUEUED)
        tmp = self.workdir / f"tsp-{uuid.uuid4().hex[:6]}"
        tmp.mkdir()
        env = self._env(n, tmp / "socket")
        tsp = self.binary

        def add(*argv: str) -> str:
            return subprocess.run([tsp, *argv], env=env, check=True, capture_output=True,
                                  text=True, timeout=60).stdout.strip()  # the new job's id

        def enqueue() -> tuple[float, str]:
            t = time.time()
            last = ""
            for _ in range(n):
                last = add("/bin/sh", "-c", command)
            return time.time() - t, last

        def finished() -> int:
            out = subprocess.run([tsp, "-l"], env=env, capture_output=True, text=True).stdout
            return sum(" finished " in line for line in out.splitlines())

        add("-S", str(workers))
        try:
            if order == "enqueue-first":
                gate = tmp / "gate"
                os.mkfifo(gate)
                add("-N", str(workers), "/bin/sh", "-c", f"cat {gate} >/dev/null")
                enq, last = enqueue()
                with open(gate, "w"):  # returns once the gate job has it open
                    t0 = time.time()
                n_done = n + 1
            else:
                t0 = time.time()
                enq, last = enqueue()
                n_done = n
            # tsp keeps no end times we can read precisely: wait for the last job to
            # end (`tsp -w` blocks until it has), then make sure every job has.
            subprocess.run([tsp, "-w", last], env=env, capture_output=True,
                           timeout=max(60, n * 0.05))
            wait_for(f"{n} tsp jobs", lambda: finished() >= n_done, max(60, n * 0.05), poll=0.01)
            t1 = time.time()
        finally:
            subprocess.run([tsp, "-K"], env=env, capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)
        return Run(n, t0, t1, {"enqueue_s": enq})


def tsp_binary() -> str | None:
    for name in ("tsp", "ts"):
        path = shutil.which(name)
        if path and name == "ts":
            # moreutils also ships a `ts` (timestamp filter): make sure this one is the spooler
            out = subprocess.run([path, "-h"], capture_output=True, text=True)
            if "TS_SOCKET" not in out.stdout + out.stderr:
                continue
        if path:
            return path
    return None


# =========================================================================== RQ

class RQ:
    """RQ with W `rq worker` processes (default forking worker) on Redis 127.0.0.1:6379."""

    name = "rq"
    REDIS_URL = "redis://127.0.0.1:6379/9"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        try:
            import redis
            import rq  # noqa: F401
        except ImportError:
            raise Skip("rq / redis-py is not installed") from None
        self.redis = redis.Redis.from_url(self.REDIS_URL)
        try:
            self.redis.ping()
        except redis.exceptions.ConnectionError:
            raise Skip("no Redis server on 127.0.0.1:6379") from None

    def _start(self, workers: int):
        from rq import Queue, Worker
        qname = f"bench-{uuid.uuid4().hex[:6]}"
        queue = Queue(qname, connection=self.redis)
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")])}
        rq_bin = shutil.which("rq", path=os.path.dirname(sys.executable)) or "rq"
        log = open(self.workdir / "rq.log", "ab")
        procs = [subprocess.Popen([rq_bin, "worker", "-u", self.REDIS_URL, "--quiet", qname],
                                  env=env, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log, start_new_session=True)
                 for _ in range(workers)]
        wait_for("rq workers to start", lambda: Worker.count(queue=queue) >= workers
                 or any(p.poll() is not None for p in procs), 30)
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("an rq worker exited at start; see rq.log")
        time.sleep(0.5)
        return queue, procs

    def _cleanup(self, queue, procs) -> None:
        for p in procs:
            stop(p)
        keys = list(self.redis.scan_iter(f"rq:*{queue.name}*")) + \
            [f"rq:job:{i}" for i in queue.finished_job_registry.get_job_ids()]
        for i in range(0, len(keys), 1000):
            self.redis.delete(*keys[i:i + 1000])

    def _wait_done(self, queue, n: int) -> None:
        def done() -> bool:
            if queue.failed_job_registry.count:
                raise RuntimeError("rq jobs failed; see rq.log")
            return queue.finished_job_registry.count >= n
        wait_for(f"{n} rq jobs", done, max(60, n * 0.05))

    def _values(self, queue) -> list[tuple[float, float, float]]:
        from rq.job import Job
        ids = queue.finished_job_registry.get_job_ids()
        return [j.return_value() for j in Job.fetch_many(ids, connection=self.redis) if j]

    def throughput(self, command: str, n: int, workers: int) -> Run:
        from rq import Queue
        queue, procs = self._start(workers)
        try:
            t0 = time.time()
            queue.enqueue_many([Queue.prepare_data("peer_tasks.rq_run", (command,))
                                for _ in range(n)])
            enq = time.time() - t0
            self._wait_done(queue, n)
            t1 = max(v[2] for v in self._values(queue))
        finally:
            self._cleanup(queue, procs)
        return Run(n, t0, t1, {"enqueue_s": enq})

    def latency(self, k: int, workers: int, idle_seconds: float = 0.0) -> dict[str, Any]:
        queue, procs = self._start(workers)
        try:
            cpu = {}
            if idle_seconds:
                pids = [d for p in procs for d in descendants(p.pid)]
                shares = idle_cpu(pids, idle_seconds)
                cpu = {"total": sum(shares.values()), "processes": len(pids)}
            # RQ's forking worker needs ~80 ms a job here: space its jobs wider so
            # they find idle workers rather than a backlog.
            for _ in range(min(k, 100)):
                queue.enqueue("peer_tasks.rq_run", "true", time.time())
                time.sleep(random.uniform(0.2, 0.3))
            k = min(k, 100)
            self._wait_done(queue, k)
            lat = [started - enq for enq, started, _ in self._values(queue)]
        finally:
            self._cleanup(queue, procs)
        return {"latencies": lat, "idle_cpu": cpu}


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)
