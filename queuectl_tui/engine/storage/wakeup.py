"""Linux inotify on the database's folder: an idle SQLite worker sleeps in the
kernel until some process writes the `-wal` file (every commit does), instead of
polling. No dependency: three libc calls through ctypes. Where inotify is not
available (other systems, some network filesystems) `WalWatch.open` returns None
and the caller falls back to polling.
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
from pathlib import Path

IN_MODIFY = 0x00000002
IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of name


class WalWatch:
    """Readable when the database's WAL file is written by anyone (ourselves included)."""

    def __init__(self, fd: int, names: set[bytes]) -> None:
        self.fd = fd
        self.names = names

    @classmethod
    def open(cls, db_file: str | os.PathLike) -> "WalWatch | None":
        path = Path(db_file).resolve()
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                return None
            wd = libc.inotify_add_watch(fd, str(path.parent).encode(),
                                        IN_MODIFY | IN_CREATE | IN_MOVED_TO)
            if wd < 0:
                os.close(fd)
                return None
        except (OSError, AttributeError):
            return None
        return cls(fd, {(path.name + "-wal").encode(), path.name.encode()})

    def wait(self, timeout: float) -> bool:
        """True if the WAL (or the database file) was written within `timeout` seconds."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        return bool(ready) and self._drain()

    def _drain(self) -> bool:
        hit = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return hit
            offset = 0
            while offset + _EVENT.size <= len(data):
                _wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size: offset + _EVENT.size + length].rstrip(b"\0")
                hit = hit or name in self.names
                offset += _EVENT.size + length

    def close(self) -> None:
        os.close(self.fd)
