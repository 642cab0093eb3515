"""SQLite writers queue in the kernel instead of in SQLite's busy handler.

SQLite lets one connection write at a time. A connection that finds the write
lock taken sleeps in its busy handler: 1 ms, then 2, 5, 10 ... and tries again,
however soon the lock came free. With two workers each committing about
1,000 times a second, that left a third of the machine idle (issue 13).

So a write transaction begun from a process's main thread first takes an
exclusive `flock` on a small file beside the database (`<db>.lock`), and lets
it go right after COMMIT or ROLLBACK. A writer that finds it taken sleeps in the
kernel and is woken the moment the holder commits. The lock only orders
queuectl's own writers; SQLite's BEGIN IMMEDIATE still guards the data, so a
writer without it (another thread, another program, a failed `open`) is as
safe as before, only slower to wake.

The wait is bounded (an interval timer, main thread only): past it the writer
goes on to BEGIN IMMEDIATE and SQLite's busy timeout, exactly as without the
lock, so a stuck holder still ends in the usual "database is locked" and a
stop request is still honoured within the same bound. `flock` locks belong to
the open file and vanish with the process: nothing is ever left locked.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading

WAIT_S = 2.0  # then fall back to SQLite's own busy wait


class _Expired(Exception):
    pass


def _expire(_signum: int, _frame: object) -> None:
    raise _Expired


class WriterLock:
    """The `flock` of one database file's writers, for this process."""

    def __init__(self, path: str, wait_s: float = WAIT_S) -> None:
        self.path = path
        self.wait_s = wait_s
        self.fd: int | None = None
        self.unusable = False  # could not be opened (read-only folder, ...): never retried
        self.held = False

    def acquire(self) -> None:
        """Take the lock if this thread may and can; never raises."""
        if self.held or threading.current_thread() is not threading.main_thread():
            return  # other threads share this open file: they use the busy handler
        fd = self._open()
        if fd is None:
            return
        if self._try(fd):
            return
        previous = signal.signal(signal.SIGALRM, _expire)
        try:
            signal.setitimer(signal.ITIMER_REAL, self.wait_s)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.held = True
        except _Expired:
            self._try(fd)  # the timer may have fired just after the lock was granted
        except OSError:
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def release(self) -> None:
        if self.held and self.fd is not None:
            self.held = False
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            except OSError:
                pass

    def close(self) -> None:
        self.held = False
        if self.fd is not None:
            os.close(self.fd)  # releases the lock too
            self.fd = None

    def _try(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        self.held = True
        return True

    def _open(self) -> int | None:
        if self.fd is None and not self.unusable:
            try:  # non-inheritable (Python's default): a job never holds it
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                self.unusable = True
        return self.fd
