"""Time and randomness, injected so tests and snapshots are deterministic.

The engine never calls `time.time()` or `random` directly: it asks its `Clock`
and `Ids`. Tests pass a `FakeClock` whose `sleep` advances time instantly.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # only seeded callers (tests, snapshots) bring a Random: ~1 ms of start-up
    import random

ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32: no i, l, o, u


class Clock:
    """Wall-clock seconds since the epoch (UTC) and a sleep that honours it."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock(Clock):
    """A clock that only moves when told to; `sleep` moves it instead of waiting."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.now()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)


class SyncedClock(Clock):
    """Local time corrected to a reference clock (the database server's).

    Hosts sharing a PostgreSQL queue compare each other's leases, so they must
    agree on "now": each measures its offset to the server once a minute and
    adds it, instead of asking the server on every call.
    """

    def __init__(self, reference: Callable[[], float], base: Clock | None = None,
                 resync_every: float = 60.0) -> None:
        self._reference = reference
        self._base = base or Clock()
        self._resync_every = resync_every
        self._offset = 0.0
        self._synced_at: float | None = None

    def _sync(self) -> None:
        before = self._base.now()
        server = self._reference()
        after = self._base.now()
        self._offset = server - (before + after) / 2
        self._synced_at = self._base.monotonic()

    def now(self) -> float:
        if self._synced_at is None or self._base.monotonic() - self._synced_at > self._resync_every:
            self._sync()
        return self._base.now() + self._offset

    def sleep(self, seconds: float) -> None:
        self._base.sleep(seconds)

    def monotonic(self) -> float:
        return self._base.monotonic()


# A random byte's low 5 bits pick a character: uniform, since 256 is a multiple
# of 32, and done in C by bytes.translate (base64.b32encode is a Python loop:
# 0.15 s of a 100,000-line `enqueue --file` against 0.03).
_BYTE_TO_CHAR = bytes(ID_ALPHABET.encode()[byte & 31] for byte in range(256))


class Ids:
    """Generates short job ids: 10 base32 characters, 50 bits of randomness."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng

    def new(self) -> str:
        return self.many(1)[0]

    def many(self, count: int) -> list[str]:
        """`count` ids from one draw of random bytes (bulk enqueue makes 100,000),
        in sorted order. The caller gives them out in the file's order, so the
        indexes on `job.id` and `event.job_id` take a bulk enqueue's rows in key
        order: each slice lands in a narrow run of pages instead of one page per
        row. Measured, 1,000,000 lines onto 1,000,000 jobs: 80 s and a 3.3 s
        longest transaction unsorted, 36 s and 0.5 s sorted (sorting costs
        0.04 s per 100,000). The ids themselves stay as random as before."""
        if self._rng is not None:  # seeded (tests, snapshots): one 50-bit draw per id
            ids = [_base32(self._rng.getrandbits(50)) for _ in range(count)]
        else:
            text = os.urandom(10 * count).translate(_BYTE_TO_CHAR).decode("ascii")
            ids = [text[i:i + 10] for i in range(0, 10 * count, 10)]
        ids.sort()
        return ids


def _base32(bits: int) -> str:
    return "".join(ID_ALPHABET[(bits >> shift) & 31] for shift in range(45, -1, -5))


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds and a `Z`, the one format every face prints.

    Cached per whole second: listing a million jobs formats five times as many
    timestamps, most of them sharing their second with a neighbour.
    """
    if ts is None:
        return None
    try:
        second = math.floor(ts)
        return f"{_iso_second(second)}.{int((ts - second) * 1000):03d}Z"
    except (OverflowError, ValueError, OSError):
        return f"{ts!r} (out of range)"  # stored by an older release: show, do not fail


def parse_iso(text: str) -> float:
    """Parse an ISO 8601 time; a time without a zone is taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = _dt.datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_dt.timezone.utc)
    return dt.timestamp()
