from __future__ import annotations

import random
from pathlib import Path

import pytest

from queuectl_tui.clock import FakeClock, Ids
from queuectl_tui.engine.db import open_database
from queuectl_tui.engine.queue import Queue
from tests.helpers import WorkerPool


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(db_path: Path, clock: FakeClock):
    opened = open_database(str(db_path))
    yield Queue(opened, clock=clock, ids=Ids(random.Random(7)), host="testhost")
    opened.close()


@pytest.fixture
def pools(db_path: Path):
    """Start real worker pools with `pools(count)`; all are stopped at teardown."""
    started: list[WorkerPool] = []

    def start(count: int = 1, db: Path | None = None) -> WorkerPool:
        pool = WorkerPool(db or db_path, count)
        started.append(pool)
        return pool

    yield start
    for pool in started:
        pool.close()
