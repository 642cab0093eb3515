"""The writers' flock (engine/storage/writer_lock.py): held exactly for a write
transaction, never by a reader or another thread, and never a way to hang."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from queuectl_tui.engine.storage.writer_lock import WriterLock


def lock_taken(path: Path) -> bool:
    """Is the flock held by anyone (seen from a fresh open file)?"""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.fixture
def opened(db_path: Path):
    opened = open_database(str(db_path))
    yield opened
    opened.close()


def test_held_for_a_write_transaction_only(opened, db_path: Path) -> None:
    lock = Path(f"{db_path}.lock")
    with opened.db.atomic():
        opened.db.execute_sql("SELECT 1")
        assert lock_taken(lock)
    assert not lock_taken(lock)
    with opened.db.atomic("DEFERRED"):  # a reader never takes it
        opened.db.execute_sql("SELECT 1")
        assert not lock_taken(lock)


def test_released_when_the_transaction_rolls_back(opened, db_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with opened.db.atomic():
            assert lock_taken(Path(f"{db_path}.lock"))
            raise RuntimeError("boom")
    assert not lock_taken(Path(f"{db_path}.lock"))
    assert not opened.db.writer_lock.held


def test_other_threads_use_sqlites_own_wait(opened, db_path: Path) -> None:
    seen: list[bool] = []

    def write() -> None:
        with opened.db.atomic():
            seen.append(lock_taken(Path(f"{db_path}.lock")))
        opened.db.close()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(30)
    assert seen == [False]


def test_a_stuck_holder_delays_a_writer_by_the_bound_only(db_path: Path) -> None:
    """Another process takes the lock and never lets go (stopped, hung): a
    writer waits `wait_s`, then writes under SQLite's own locking."""
    opened = open_database(str(db_path))
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys
            fd = os.open({str(db_path) + '.lock'!r}, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("held", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        opened.db.writer_lock.wait_s = 0.3
        queue = Queue(opened)
        started = time.monotonic()
        job = queue.enqueue(JobSpec(command="true"))
        waited = time.monotonic() - started
        assert queue.job_dict(job["id"])["state"] == "pending"
        assert 0.25 <= waited < 10, waited
        assert not opened.db.writer_lock.held
    finally:
        holder.kill()
        holder.wait()
        opened.close()


def test_a_waiting_writer_gets_it_when_the_holder_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first, second = WriterLock(str(path)), WriterLock(str(path), wait_s=30)
    first.acquire()
    assert first.held
    threading.Timer(0.2, first.release).start()  # from another thread: the lock is the file's
    second.acquire()  # blocks in the kernel until then
    assert second.held and not first.held
    second.release()
    assert not lock_taken(path)
    first.close()
    second.close()


def test_an_unwritable_folder_means_no_lock_not_an_error(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "missing" / "x.lock"))
    lock.acquire()
    assert not lock.held and lock.unusable
    lock.release()
