"""Job output: the full log of every run lives in a file beside the database.

The database keeps only a bounded tail of stdout and stderr (for `show` and the
console); the file keeps everything, one file per job, appended per attempt.
"""

from __future__ import annotations

import os
from pathlib import Path

TAIL_CHARS = 4096


def log_path(log_dir: Path, seq: int) -> Path:
    # Named by the job's internal number, so no user-chosen id reaches a file name.
    return log_dir / f"{seq}.log"


def open_for_append(log_dir: Path, seq: int) -> int:
    """A raw fd for appending, created owner-only (as is the folder)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    try:
        return os.open(log_path(log_dir, seq), flags, 0o600)
    except FileNotFoundError:  # the folder's first log
        make_private_dir(log_dir)
        return os.open(log_path(log_dir, seq), flags, 0o600)


def make_private_dir(path: Path) -> None:
    """Create `path` and every missing folder above it owner-only (0700).

    `Path.mkdir(parents=True)` gives the parents the umask's mode (0755): for a
    PostgreSQL database that made `pg-logs/` readable by everyone, with the
    database's host and name in its listing and the job logs' names below."""
    missing = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass


def read_log(log_dir: Path, seq: int, offset: int = 0) -> bytes:
    try:
        with open(log_path(log_dir, seq), "rb") as fh:
            fh.seek(offset)
            return fh.read()
    except FileNotFoundError:
        return b""


def remove_log(log_dir: Path, seq: int) -> None:
    try:
        os.unlink(log_path(log_dir, seq))
    except FileNotFoundError:
        pass


def decode_tail(data: bytes, limit: int = TAIL_CHARS) -> str:
    """The last `limit` characters of output, as text any database can store.

    Bytes that are not UTF-8 become U+FFFD, and so does NUL (PostgreSQL text
    cannot hold it); the log file keeps the exact bytes.
    """
    text = data[-limit * 4:].decode("utf-8", errors="replace")[-limit:]
    return text.replace("\x00", "\ufffd")


def log_size(log_dir: Path, seq: int) -> int:
    """The log's length in bytes (0: no log yet)."""
    try:
        return os.stat(log_path(log_dir, seq)).st_size
    except FileNotFoundError:
        return 0


def read_range(log_dir: Path, seq: int, start: int, length: int) -> bytes:
    """At most `length` bytes from `start`: a reader of a huge log holds a window
    of it, never the whole file."""
    try:
        with open(log_path(log_dir, seq), "rb") as fh:
            fh.seek(max(0, start))
            return fh.read(max(0, length))
    except FileNotFoundError:
        return b""


FIND_CHUNK = 1 << 20


def find(log_dir: Path, seq: int, needle: bytes, start: int, end: int, *,
         backwards: bool = False, ignore_case: bool = False) -> int | None:
    """The offset of the first `needle` in [start, end) (the last one with
    `backwards`), read a megabyte at a time so any size of log is searched in
    bounded memory. `ignore_case` folds ASCII letters."""
    if not needle or end - start < len(needle):
        return None
    if ignore_case:
        needle = needle.lower()
    overlap = len(needle) - 1
    try:
        fh = open(log_path(log_dir, seq), "rb")
    except FileNotFoundError:
        return None
    with fh:
        pos = end if backwards else start
        while (pos > start) if backwards else (pos < end):
            lo = max(start, pos - FIND_CHUNK) if backwards else pos
            hi = pos if backwards else min(end, pos + FIND_CHUNK)
            fh.seek(lo)
            chunk = fh.read(min(end, hi + overlap) - lo if not backwards else hi - lo)
            if ignore_case:
                chunk = chunk.lower()
            at = chunk.rfind(needle) if backwards else chunk.find(needle)
            if at >= 0:
                return lo + at
            if backwards:
                pos = lo + overlap if lo > start else start  # the next chunk overlaps this
                if lo == start:
                    break
            else:
                pos = hi
    return None
