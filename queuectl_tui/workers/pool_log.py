"""The pool's log: one line per job event and per worker event, on stderr.

`worker start` runs under a terminal, `--detach --log FILE`, or a service
manager that hands stderr to the journal. Each line carries the job id, its
attempt and the worker id (and the queue, once jobs have one), so
`journalctl -u queuectl-worker | grep ID` or `grep ID workers.log` tells a
job's story across workers and restarts.

Two formats: text for people (the default) and JSON Lines (`--log-format
json`) for log shippers; every JSON line also holds the text as `message`.
`--quiet` drops the job lines and keeps the worker and pool ones.

Cost matters: a busy worker writes two lines per job (claimed, finished), so
a line is built with plain string formatting and written with one `os.write`
(no `logging` handlers, locks or buffers to flush). One write per line also
keeps lines from the pool's processes whole where they share one stderr (a
pipe, a file opened for appending, the journal's socket).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from queuectl_tui.safe_text import printable

if TYPE_CHECKING:  # types only: this module must stay cheap to import
    from queuectl_tui.engine import Claimed, Rescued
    from queuectl_tui.workers.runner import RunResult

FORMATS = ("text", "json")
ERROR_CHARS = 300  # of a job's error in a line: its cause and the start of its last stderr line
HOOK_OUTPUT_CHARS = 300  # of each of a finish hook's streams in its line: the end

# syslog levels: journald reads a "<N>" prefix on a line as its priority, so
# `journalctl -p warning` shows dead jobs, rescues and crashes without the rest.
INFO, WARNING, ERROR = 6, 4, 3


def under_journal(fd: int = 2) -> bool:
    """Whether `fd` is the journal's stream: systemd says so in JOURNAL_STREAM
    ("device:inode" of the socket it connected to stderr). The journal stamps
    every line itself, so the text format leaves its own time out there."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in stream.split(":"))
        st = os.fstat(fd)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


_second: list = [(None, "")]  # the last whole second stamped, and its text, as one pair


def _stamp(at: float) -> str:
    """ISO 8601 UTC with milliseconds. A busy pool stamps many lines a second,
    so the text up to the second is kept and only the milliseconds are new.
    The pair is replaced whole: the supervisor's hook threads stamp lines too."""
    whole = int(at)
    second, text = _second[0]
    if whole != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second[0] = (whole, text)
    return f"{text}.{int((at - whole) * 1000):03d}Z"


def _seconds(value: float) -> str:
    """A duration for people: 0.012 s, 3.4 s, 75 s."""
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


def _error(error: str | None) -> str:
    """A job's error on one line, escapes shown, clipped: a line stays well under
    the 4 KiB a pipe writes whole, so lines of many processes never mix."""
    text = printable(error or "", keep_newlines=False).strip()
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS - 1] + "…"


def _output(tail: str, printed: int) -> tuple[str, str, int]:
    """The end of what a command printed, for one line: (its last HOOK_OUTPUT_CHARS
    characters as printed, the same shown as `_error` shows a job's error, and
    how many bytes before them are left out). `printed` counts every byte; the
    tail is its end, decoded (engine/logs.py decode_tail)."""
    kept = tail[-HOOK_OUTPUT_CHARS:]
    cut = max(0, printed - len(kept.encode("utf-8", "surrogatepass")))
    shown = printable(kept, keep_newlines=False).strip()
    return kept, (f"[{cut:,} bytes cut] {shown}" if cut else shown), cut


class PoolLog:
    """Writes the pool's lines to one file descriptor (stderr by default).

    `jobs=False` (`--quiet`) drops job lines. `stamp=None` stamps text lines
    with the time unless stderr is the journal; JSON lines always carry `ts`.
    """

    def __init__(self, fmt: str = "text", *, jobs: bool = True, fd: int = 2,
                 stamp: bool | None = None, now: Callable[[], float] = time.time) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.json = fmt == "json"
        self.jobs = jobs
        self.fd = fd
        journal = under_journal(fd)
        self.stamp = not journal if stamp is None else stamp
        self.levels = journal
        self.now = now
        self._held: list[str] | None = None  # lines kept for one write (together)

    # ---------------------------------------------------------------- job events

    def claimed(self, worker: str, job: Claimed) -> None:
        """A worker took a job (its queue read with getattr: engines before named
        queues have none)."""
        if self.jobs:
            self._job("claimed", worker, job.id, job.attempts, job.max_retries,
                      getattr(job, "queue", None), "claimed", INFO, run=job.runs)

    def finished(self, worker: str, job: Claimed, state: str | None, duration: float,
                 exit_code: int | None, error: str | None,
                 retry_in: float | None = None) -> None:
        """A run ended and was recorded: `state` is the job's new state (None: the
        claim had been lost, so nothing was recorded)."""
        if not self.jobs:
            return
        took = _seconds(duration)
        why = f" ({_error(error)})" if error else ""
        level = INFO
        if state == "completed":
            text = f"completed in {took}"
        elif state == "failed":
            text = f"failed after {took}{why}; retry in {max(retry_in or 0.0, 0.0):.1f} s"
        elif state == "dead":
            text, level = f"dead after {took}{why}: no retries left, in the DLQ", WARNING
        elif state == "cancelled":
            text = f"cancelled after {took}"  # the error only repeats it
        elif state == "pending" and retry_in is not None:  # it snoozed: `error` says how long
            text = f"{error} after {took}; runs again in {max(retry_in, 0.0):.1f} s"
        elif state == "pending":
            text = f"stopped after {took}{why}"
        else:
            text, level = f"ran {took} but its claim was lost; not recorded here{why}", WARNING
        extra: dict[str, Any] = {"outcome": state, "duration_s": round(duration, 6),
                                 "exit_code": exit_code, "run": job.runs}
        if error:
            extra["note" if state == "pending" and retry_in is not None else "error"] = error
        if retry_in is not None:
            extra["retry_in_s"] = round(retry_in, 3)
            extra["retry_at"] = _stamp(self.now() + retry_in)
        self._job("finished", worker, job.id, job.attempts, job.max_retries,
                  getattr(job, "queue", None), text, level, **extra)

    def paused(self, worker: str, job: Claimed, stopped: bool, why: str = "") -> None:
        """A running job's processes stopped (`queuectl pause`) or continued."""
        if self.jobs:
            self._job("paused" if stopped else "resumed", worker, job.id, job.attempts,
                      job.max_retries, getattr(job, "queue", None),
                      ("paused: its processes stopped (SIGSTOP)" if stopped
                       else "resumed (SIGCONT)") + (f": {why}" if why else ""), INFO,
                      run=job.runs)

    def released(self, worker: str, job: Claimed) -> None:
        """A job claimed with the last outcome but never started: the worker was
        stopping, so it went back to the queue, this attempt not counted."""
        if self.jobs:
            self._job("released", worker, job.id, job.attempts, job.max_retries,
                      getattr(job, "queue", None), "handed back unstarted (worker stopping; "
                      "attempt not counted)", INFO, run=job.runs)

    def rescued(self, by: str, run: Rescued) -> None:
        """A gone worker's job taken back by `by` (a worker id, or "supervisor")."""
        if self.jobs:
            where = {"pending": "back in the queue", "dead": "dead: no retries left, in the DLQ",
                     "cancelled": "cancelled, as asked"}.get(run.state, run.state)
            self._job("rescued", run.worker_id or "?", run.id, run.attempt, run.max_retries,
                      run.queue, f"rescued by {by} ({_error(run.note)}): {where}", WARNING,
                      outcome=run.state, rescued_by=by, note=run.note)

    def _job(self, event: str, worker: str, job_id: str, attempt: int, max_retries: int,
             queue: str | None, text: str, level: int, **extra: Any) -> None:
        in_queue = f" in queue {queue}" if queue is not None else ""
        message = f"worker {worker}: job {job_id}{in_queue} attempt {attempt}/{max_retries + 1} {text}"
        if not self.json:
            self._write(message, level)
            return
        record: dict[str, Any] = {"event": f"job.{event}", "job": job_id, "attempt": attempt,
                                  "max_attempts": max_retries + 1, "worker": worker}
        if queue is not None:
            record["queue"] = queue
        record.update(extra)
        record["message"] = message
        self._write_json(record, level)

    # ---------------------------------------------------------------- finish hooks

    def hook(self, run: Any, outcome: str, text: str | None = None, *,
             result: RunResult | None = None, level: int = INFO) -> None:
        """One line per finish hook that has something to say: how it ended if
        not well (`outcome`: ok, failed, timeout, stopped, dropped, unstarted),
        and the end of its stdout and stderr, escaped and clipped like a job's
        error, with how much was cut (a hook printing 50 MB makes one short
        line). Never quieted: a hook is the pool's own work."""
        parts = [f"hook for job {run.job_id} ({run.state}) {text or 'ran'}"]
        extra: dict[str, Any] = {"job": run.job_id, "state": run.state, "outcome": outcome}
        if result is not None:
            extra["exit_code"] = result.exit_code
            for stream, tail, printed in (("stdout", result.stdout_tail, result.stdout_bytes),
                                          ("stderr", result.stderr_tail, result.stderr_bytes)):
                if printed:
                    kept, shown, cut = _output(tail, printed)
                    parts.append(f"{stream}: {shown}")
                    extra[stream] = kept
                    if cut:
                        extra[f"{stream}_cut_bytes"] = cut
        message = "; ".join(parts)
        self.pool("hook", message, level, **extra)

    # ---------------------------------------------------------------- workers and the pool

    def worker(self, event: str, worker: str, text: str, level: int = INFO,
               **extra: Any) -> None:
        """started, stopping, stopped, died, replaced, trouble: never quieted."""
        message = f"worker {worker}: {text}"
        if self.json:
            self._write_json({"event": f"worker.{event}", "worker": worker, **extra,
                              "message": message}, level)
        else:
            self._write(message, level)

    def pool(self, event: str, text: str, level: int = INFO, **extra: Any) -> None:
        """The supervisor's own lines: started, stopping, stopped, trouble, notes."""
        if self.json:
            self._write_json({"event": f"pool.{event}", "pid": os.getpid(), **extra,
                              "message": text}, level)
        else:
            self._write(text, level)

    def note(self, text: str) -> None:
        """A plain line from the pool (the shape `Callable[[str], None]` other parts take)."""
        self.pool("note", text)

    # ---------------------------------------------------------------- output

    @contextmanager
    def together(self) -> Iterator[None]:
        """The lines said inside go out in one write at the end (still whole lines)."""
        if self._held is not None:  # already inside: the outer one writes
            yield
            return
        self._held = []
        try:
            yield
        finally:
            lines, self._held = self._held, None
            if lines:
                self._emit("".join(lines))

    def _write(self, message: str, level: int) -> None:
        prefix = f"<{level}>" if self.levels else ""
        if self.stamp:
            prefix += _stamp(self.now()) + " "
        self._emit(f"{prefix}{message}\n")

    def _write_json(self, record: dict[str, Any], level: int) -> None:
        record = {"ts": _stamp(self.now()), **record}
        prefix = f"<{level}>" if self.levels else ""
        self._emit(prefix + json.dumps(record) + "\n")

    def _emit(self, line: str) -> None:
        if self._held is not None:
            self._held.append(line)
            return
        data = line.encode("utf-8", "backslashreplace")
        try:
            while data:  # one write for any line a pipe takes whole (under 4 KiB)
                data = data[os.write(self.fd, data):]
        except OSError:
            # A closed stderr (EPIPE) or a full non-blocking one (EAGAIN) must
            # not stop the work it reports on.
            pass
