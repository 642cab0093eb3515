"""What the console reads on its database threads, and the plain values it hands the screens.

These functions run on the threads of `database.Database` (each takes the
`Queue` first); they call `Queue` methods and the engine's reads (no SQL
here) and return plain data, so screens only format.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from queuectl_tui.engine import (WAITING, Queue, StateCounts, log_tail, queue_activity,
                                 throughput)
from queuectl_tui.engine import job_detail as job_fields
from queuectl_tui.errors import NotFound

@dataclass
class Summary:
    """What the header strip shows: counts per state, live workers, throughput."""

    now: float
    counts: dict[str, int]
    live_workers: int
    throughput: list[int]  # finished runs per 10 s bucket, oldest first
    counted: bool = True  # False: the first full count is still running (counts empty)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        """Jobs finished per second over the last minute."""
        return sum(self.throughput[-6:]) / 60.0


@dataclass
class Detail:
    """One job's fields and the output read since the last look."""

    job: dict[str, Any] | None
    output: str = ""
    offset: int = 0
    from_log: bool = False


@dataclass
class Snapshot:
    """One refresh: the summary plus what the current view asked for."""

    summary: Summary | None  # None: not asked for (a key's read)
    view: Any = None
    view_seconds: float = 0.0  # how long the view's own read took


# ---------------------------------------------------------------- snapshots (db thread)

def summary(queue: Queue, counter: StateCounts) -> Summary:
    now = queue.clock.now()
    counts = counter.read(queue, queue.clock.monotonic())
    return Summary(now=now, counts=counts or {}, counted=counts is not None,
                   live_workers=len(queue.live_workers()), throughput=throughput(now))


def refresh(queue: Queue, counter: StateCounts | None,
            load: Callable[[Queue], Any] | None) -> Snapshot:
    """The summary (unless `counter` is None) and, if given, the current view's
    own data, in one trip."""
    head = summary(queue, counter) if counter is not None else None
    if load is None:
        return Snapshot(summary=head)
    started = time.perf_counter()
    view = load(queue)
    return Snapshot(summary=head, view=view, view_seconds=time.perf_counter() - started)


def job_detail(queue: Queue, job_id: str | None, offset: int | None) -> Detail | None:
    """A job's fields, plus its log since `offset` (None: the tail), or its stored tails."""
    if job_id is None:
        return None
    job = job_fields(job_id)
    if job is None:
        return Detail(job=None)
    job["attempts_log"] = queue.attempts(job_id)
    job["after"] = queue.waiting_for(job_id)
    job["stranded"] = stranded_note(queue, job)
    job["waiting"] = waiting_note(queue, job)
    data, new_offset = log_tail(queue.opened, job["seq"], offset)
    jumped = new_offset - len(data) != offset  # not where the last read ended
    data, new_offset = whole_characters(data, new_offset, jumped=jumped)
    if new_offset or offset is not None:
        return Detail(job=job, output=data.decode("utf-8", errors="replace"),
                      offset=new_offset, from_log=True)
    parts = []
    if job.get("stdout_tail"):
        parts.append(job["stdout_tail"].rstrip("\n"))
    if job.get("stderr_tail"):
        parts.append("--- stderr ---\n" + job["stderr_tail"].rstrip("\n"))
    return Detail(job=job, output="\n".join(parts), offset=0, from_log=False)


def whole_characters(data: bytes, end: int, *, jumped: bool) -> tuple[bytes, int]:
    """A log read cut to whole UTF-8 characters, and the offset after them: a
    character a running job has half written is left for the next read (so it
    is decoded whole, not as two "\ufffd"), and a read that `jumped` into the log
    (not where the last one ended) drops the continuation bytes it starts in."""
    if jumped:
        skip = 0
        while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
            skip += 1
        data = data[skip:]
    for back in range(1, min(3, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: its lead is further back
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else \
            4 if byte & 0xF8 == 0xF0 else 1
        if need > back:  # the character's last bytes are not written yet
            return data[:-back], end - back
        break
    return data, end


def stranded_note(queue: Queue, job: dict[str, Any]) -> str | None:
    """Why a `processing` job is not running: its worker is gone (Queue.stranded,
    what `queuectl show` says); None for any other job, or one whose worker lives."""
    if job["state"] != "processing":
        return None
    gone = queue.stranded([job["id"]])
    return gone[0]["note"] if gone else None


def waiting_note(queue: Queue, job: dict[str, Any]) -> str | None:
    """Why a due waiting job is not running (a paused queue, a rate, its key's
    limit, needs no pool has free: Queue.why_waiting, what `queuectl show` says);
    None for a job that runs, is not due, or that nothing holds back."""
    if job["state"] not in WAITING or job["run_at"] > queue.clock.now():
        return None
    try:
        return queue.why_waiting(queue.get(job["id"]))
    except NotFound:  # deleted since its fields were read
        return None


def workers(queue: Queue, include_stopped: bool) -> list[dict[str, Any]]:
    """Worker dicts as `queuectl worker list --json` shows them (gone ones included)."""
    return queue.workers(include_stopped=include_stopped)


@dataclass
class WorkerRows:
    """The Workers view: worker dicts (as `workers` reads them) and each live
    pool with its capacity, used and free (Queue.pools)."""

    workers: list[dict[str, Any]]
    pools: list[dict[str, Any]]


def worker_rows(queue: Queue, include_stopped: bool) -> WorkerRows:
    return WorkerRows(workers(queue, include_stopped), queue.pools())


@dataclass
class QueueRows:
    """The Queues view: `queue list --json` rows plus each queue's finished runs
    per 10 s over two minutes. `counted` False: the per-queue counts are still
    being read (the rows show none yet)."""

    rows: list[dict[str, Any]]
    counted: bool = True
    per_queue_needed: bool = False  # named queues: their counts come from the slow thread


def queue_rows(queue: Queue, per_queue: dict[str, dict[str, int]] | None,
               header: dict[str, int] | None, count_here: bool = False) -> QueueRows:
    """Counts come from what was read already: the header's (only `default`
    exists) or the slow thread's last count per queue; a count here only with
    `count_here` (one thread: pictures and tests)."""
    named = queue.has_named_queues()
    if named and per_queue is None and count_here:
        per_queue = queue.counts_by_queue()
    if not named and header is not None:
        found, counted = queue.queue_list(counts=header), True
    else:
        found, counted = queue.queue_list(by_queue=per_queue or {}), per_queue is not None
    activity = queue_activity(queue.clock.now())
    for q in found:
        q["activity"] = activity.get(q["name"], [0] * 12)
    return QueueRows(found, counted=counted, per_queue_needed=named)


def schedule_rows(queue: Queue) -> list[dict[str, Any]]:
    """`schedule list --json`: every schedule with its next run and last job."""
    from queuectl_tui.engine import list_schedules
    return list_schedules()


def trends(queue: Queue, span: str) -> Any:
    """The Trends view's figures for one span, ending now (engine/trends.py)."""
    from queuectl_tui.engine import read_trends
    return read_trends(queue.db, queue.clock.now(), span)


def config_rows(queue: Queue) -> dict[str, Any]:
    return queue.config_all()
