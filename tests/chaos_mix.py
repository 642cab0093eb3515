"""The chaos run's mix: dependencies, unique keys and finish hooks under kills.

Everything here goes through real processes as a user's scripts would: the
late pairs and the keyed jobs are enqueued by `queuectl enqueue` processes
racing the pools, and the hook is the config's `finish-hook`, run by the
pools' supervisors. `Mix` drives them from a thread beside the chaos loop;
`check_mix` reads the database and the files they wrote afterwards.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

UNFINISHED = ("pending", "processing", "failed", "blocked")
KEYS = 4  # keyed enqueues share this many keys, so they collide often


class Mix:
    """The extra load; inactive (every method a no-op) when nothing was asked."""

    def __init__(self, db: str, workdir: Path, ran: Path, rng: random.Random, *,
                 late_pairs: int, keyed: int, hooks: bool) -> None:
        self.db, self.ran, self.rng = db, ran, rng
        self.late_pairs, self.keyed, self.hooks = late_pairs, keyed, hooks
        self.hook_file = workdir / "hooks.txt"
        self.active = bool(late_pairs or keyed or hooks)
        self.enqueued: list[str] = []  # ids the CLI said it enqueued
        self.failures: list[str] = []  # enqueues that exited non-zero (none expected)
        self.key_violations: list[tuple[str, int]] = []
        self.pairs: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader: Any = None

    def prepare(self, queue: Any) -> None:
        if self.hooks:
            queue.config_set("finish-hook", f'echo "$QUEUECTL_JOB_ID" >> {self.hook_file}')
            # A hook held by a pool that is SIGKILLed comes back when its lease
            # (the timeout plus 10 s) runs out: keep that short in a run of kills.
            queue.config_set("finish-hook-timeout", 2)

    def start(self) -> None:
        if self.late_pairs or self.keyed:
            self._thread = threading.Thread(target=self._drive, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(300)

    def done(self) -> bool:
        return self._thread is None or not self._thread.is_alive()

    def created(self) -> int:
        with self._lock:
            return len(self.enqueued)

    def sample(self) -> None:
        """No unique key held by two unfinished jobs, right now."""
        if not self.keyed:
            return
        if self._reader is None:
            from tests.chaos_run import _Reader
            self._reader = _Reader(self.db)
        marks = ",".join("?" * len(UNFINISHED))
        rows = self._reader.all(
            f"SELECT unique_key, COUNT(*) FROM job WHERE unique_key IS NOT NULL "
            f"AND state IN ({marks}) GROUP BY unique_key HAVING COUNT(*) > 1", UNFINISHED)
        if self._reader.pg:
            self._reader.conn.rollback()  # a fresh snapshot next time
        self.key_violations.extend((key, n) for key, n in rows)

    def wait_for_hooks(self, deadline: float) -> None:
        """Hooks run after the commit that finished the job: give the pools the
        time to drain the outbox before they are stopped."""
        if not self.hooks:
            return
        from tests.chaos_run import _Reader
        reader = _Reader(self.db)
        try:
            while time.time() < deadline:
                if reader.all("SELECT COUNT(*) FROM hook_run")[0][0] == 0:
                    return
                if reader.pg:
                    reader.conn.rollback()
                time.sleep(0.1)
        finally:
            reader.conn.close()

    def _drive(self) -> None:
        with ThreadPoolExecutor(max_workers=4) as pool:
            todo = [("pair", n) for n in range(self.late_pairs)]
            todo += [("keyed", n) for n in range(self.keyed)]
            self.rng.shuffle(todo)
            for kind, n in todo:
                if self._stop.is_set():
                    break
                if kind == "pair":
                    self._pair(pool, n)
                else:
                    list(pool.map(lambda j, n=n: self._keyed(n, j), range(3)))

    def _pair(self, pool: ThreadPoolExecutor, n: int) -> None:
        """A short job, then a job `--after` it enqueued while it may be finishing:
        the window in which a dependent could wait for one already completed."""
        first, second = f"A{n}", f"B{n}"
        # A runs about as long as the CLI takes to start and check it, so B's
        # check often meets A in its finishing transaction.
        self._enqueue(first, f"echo {first} >> {self.ran}; sleep {self.rng.uniform(0.1, 0.4):.2f}")
        time.sleep(self.rng.uniform(0, 0.1))
        pool.submit(self._enqueue, second, f"echo {second} >> {self.ran}", "--after", first)
        with self._lock:
            self.pairs.append((second, first))

    def _keyed(self, n: int, j: int) -> None:
        job_id = f"u{n}-{j}"
        self._enqueue(job_id, f"echo {job_id} >> {self.ran}; sleep 0.1",
                      "--unique-key", f"k{n % KEYS}", "--if-absent")

    def _enqueue(self, job_id: str, command: str, *options: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "queuectl_tui", "enqueue", "--db", self.db, "--id", job_id,
             *options, "--", "sh", "-c", command], capture_output=True, text=True, timeout=120)
        with self._lock:
            if proc.returncode != 0:
                self.failures.append(f"{job_id}: exit {proc.returncode}: {proc.stderr.strip()}")
            elif proc.stdout.startswith("enqueued"):
                self.enqueued.append(job_id)


def check_mix(reader: Any, mix: Mix, ran: Path, stopped_at: float | None) -> dict:
    """The mix's invariants, read after the run."""
    blocked = reader.all("SELECT id FROM job WHERE state = 'blocked'")
    first_start: dict[str, float] = {}
    completed_at: dict[str, float] = {}
    for job_id, to_state, at in reader.all(
            "SELECT job_id, to_state, at FROM event WHERE to_state IN "
            "('processing', 'completed') ORDER BY seq"):
        if to_state == "processing":
            first_start.setdefault(job_id, at)
        else:
            completed_at[job_id] = at
    early = [(job, needs) for job, needs in reader.all("SELECT job_id, needs FROM dependency")
             if job in first_start and first_start[job] < completed_at.get(needs, float("inf"))]
    report: dict[str, Any] = {
        "mix_enqueued": len(mix.enqueued), "mix_enqueue_failures": mix.failures[:5],
        "dependencies": reader.all("SELECT COUNT(*) FROM dependency")[0][0],
        "stuck_blocked": len(blocked), "stuck_blocked_ids": [r[0] for r in blocked[:5]],
        "started_before_dependency": len(early),
        "key_held_twice": len(mix.key_violations), "key_violations": mix.key_violations[:5],
    }
    if mix.hooks and stopped_at is None:
        hooked = defaultdict(int)
        if mix.hook_file.exists():
            for line in mix.hook_file.read_text().split():
                hooked[line] += 1
        finished = [r[0] for r in reader.all(
            "SELECT id FROM job WHERE state IN ('completed', 'dead', 'cancelled')")]
        report["hooks_missing"] = sum(1 for job in finished if job not in hooked)
        report["hooks_run_twice"] = sum(1 for n in hooked.values() if n > 1)
        report["hooks_left_queued"] = reader.all("SELECT COUNT(*) FROM hook_run")[0][0]
    report["mix_ok"] = (not mix.failures and report["stuck_blocked"] == 0
                        and report["started_before_dependency"] == 0
                        and report["key_held_twice"] == 0
                        and report.get("hooks_missing", 0) == 0)
    return report
