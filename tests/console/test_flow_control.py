"""Flow control in the console (issue 27): the key: filter, a job's key, needs,
devices and why it waits in the detail pane, runs' peak memory and CPU time,
each queue's rate and per-key limit, each pool's capacity, used and free.

The database is built through the engine with the fixed clock: a pool of two
workers with 4 cpus, 8G and GPUs 0 and 1; queue `api` (5 starts a minute, 2
running per key) and queue `slow` (1 start per 30s), each held back."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from queuectl_tui.clock import FakeClock, Ids
from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle, until
from queuectl_tui.engine import Capacity, Usage, register_worker
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from tests.console.conftest import HOST, keys_then_settle, make_app
from tests.console.test_flows import shown_ids
from tests.console.test_safe_output import text_of

POOL = f"{HOST}:7000"
CAPACITY = Capacity(cpus=4.0, mem=8 << 30, gpus=("0", "1"))
SIZE = (120, 36)


def claim_all(q: Queue, worker: str) -> list:
    taken = []
    while (claimed := q.claim(worker, 30)) is not None:
        taken.append(claimed)
    return taken


def build_flow(path: Path, clock: FakeClock) -> None:
    q = Queue(open_database(str(path)), clock=clock, ids=Ids(random.Random(2727)))
    for n in (1, 2):
        register_worker(f"fixture-p{n}", host=HOST, pid=7000 + n, supervisor_pid=7000,
                        now=clock.now(), pool=POOL, capacity=CAPACITY.to_json())
    q.claim_for(POOL, CAPACITY)
    q.queue_set("api", rate_limit=5, rate_period=60.0, key_limit=2)
    q.queue_set("slow", rate_limit=1, rate_period=30.0)
    q.enqueue(JobSpec(command="python train.py --epochs 1", id="train-1", queue="gpu",
                      cpus=2, mem=4 << 30, gpus=1))
    first = q.claim("fixture-p1", 30)
    assert first is not None and first.devices
    started = clock.now()
    clock.advance(90)
    q.finish_and_claim(first, "fixture-p1", exit_code=0, error=None, started_at=started,
                       usage=Usage(peak_mem=3 << 30, cpu_s=170.5, mem_limit_by="cgroup v2",
                                   devices=first.devices))
    q.enqueue_many([
        JobSpec(command="python train.py --epochs 9", id="train-2", queue="gpu", cpus=2,
                mem=4 << 30, gpus=1),
        JobSpec(command="./sync.sh c1 a", id="c1-a", queue="api", key="c1"),
        JobSpec(command="./sync.sh c1 b", id="c1-b", queue="api", key="c1"),
        JobSpec(command="./sync.sh c2 a", id="c2-a", queue="api", key="c2"),
        JobSpec(command="./export.sh 1", id="slow-1", queue="slow"),
    ])
    assert len(claim_all(q, "fixture-p2")) == 5
    clock.advance(5)
    q.enqueue_many([
        JobSpec(command="./sync.sh c1 c", id="c1-c", queue="api", key="c1"),
        JobSpec(command="./export.sh 2", id="slow-2", queue="slow"),
        JobSpec(command="python train.py --big", id="train-big", queue="gpu", gpus=4),
    ])
    assert claim_all(q, "fixture-p2") == []
    clock.advance(1)
    q.opened.close()


@pytest.fixture
def flow_db(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    build_flow(tmp_path / "queue.db", clock)
    return "queue.db"


async def open_detail(pilot, job_id: str):
    """The job alone in Jobs (id: filter), its detail pane open; its fields' text."""
    await press(pilot, "1", "slash", "ctrl+u", *f"id:{job_id}", "enter")
    assert shown_ids(pilot.app) == [job_id]
    detail = pilot.app.screen.query_one("#detail")
    if not detail.display:
        await press(pilot, "enter")
    await until(pilot, lambda: (detail.shown or {}).get("id") == job_id)
    return " ".join(text_of(pilot.app, pilot.app.screen.query_one("#fields")).split())


async def test_the_key_filter_lists_that_keys_jobs(flow_db, clock):
    app = make_app(flow_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"key:c1", "enter")
        assert sorted(shown_ids(app)) == ["c1-a", "c1-b", "c1-c"]
        await press(pilot, "slash", "ctrl+u", *"key:c1 key:c2 state:pending", "enter")
        assert shown_ids(app) == ["c1-c"]
        await press(pilot, "slash", "ctrl+u", *"key:c", "enter")  # exact, not a prefix
        assert shown_ids(app) == []
        await press(pilot, "3", "slash", *"key:c1", "enter")  # the DLQ takes it too
        assert app.screen.query_one("#filter-error").display is False


async def test_the_detail_says_key_needs_devices_and_why_a_job_waits(flow_db, clock):
    app = make_app(flow_db, clock, threaded=True)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(pilot)
        fields = await open_detail(pilot, "c1-c")
        assert "waiting key c1 has 2 running, its limit in queue api" in fields
        assert "key c1" in fields
        fields = await open_detail(pilot, "slow-2")
        assert "queue slow is at its rate (1/30s); the next start is allowed in 24.0s" \
            in fields
        fields = await open_detail(pilot, "train-big")
        assert "needs 4 GPUs; the largest pool has 2" in fields
        assert "needs 4 GPUs" in fields
        fields = await open_detail(pilot, "train-2")  # running: the GPU it was given
        assert "needs 2 cpus, 4G memory, 1 GPU" in fields
        assert "devices GPU 0" in fields and "waiting" not in fields
        fields = await open_detail(pilot, "c2-a")  # running, nothing to say
        assert "waiting" not in fields and "needs" not in fields


async def test_the_runs_show_peak_memory_and_cpu_time(flow_db, clock):
    app = make_app(flow_db, clock, threaded=True)
    async with app.run_test(size=(140, 60)) as pilot:
        await settle(pilot)
        fields = await open_detail(pilot, "train-1")
        assert "#1 exit 0 1m30s mem 3G cpu 2m50s fixture-p1" in fields
        assert "memory limit enforced by cgroup v2" in fields


async def test_the_queues_view_shows_each_rate_and_per_key_limit(flow_db, clock):
    app = make_app(flow_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "6")
        table = app.screen.query_one("DataTable")
        await until(pilot, lambda: "api" in app.screen.rows)

        def cell(name: str, column: str) -> str:
            return str(table.get_cell(name, column))

        assert (cell("api", "per_key"), cell("api", "starts")) == ("2", "3/5 per 1m")
        assert (cell("slow", "per_key"), cell("slow", "starts")) == \
            ("-", "1/1 per 30s, next 24s")
        assert cell("gpu", "starts") == "-"
        screen = text_of(app, table)
        assert "RATE" in screen and "PER KEY" in screen and "LAST 2 MIN" in screen


async def test_the_workers_view_shows_each_pools_capacity_used_and_free(flow_db, clock):
    app = make_app(flow_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        pools = app.screen.query_one("#pools")
        await until(pilot, lambda: pools.display)
        text = " ".join(text_of(app, pools).split())
        assert text.startswith("POOL WORKERS CPUS MEMORY GPUS")
        assert f"{POOL} 2 2/4 used, 2 free 4G/8G used, 4G free 1/2 used (0), 1 free (1)" in text


async def test_no_pool_no_pool_table(queue_db, clock):
    """Workers that belong to no pool (older ones): the view is as it was."""
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "2")
        assert app.screen.query_one("#pools").display is False


def test_flow_queues_picture(snap_compare, flow_db, clock):
    """The Queues view with a rate in use, one used up, and a per-key limit."""
    assert snap_compare(make_app(flow_db, clock), terminal_size=SIZE,
                        run_before=keys_then_settle("6"))


def test_flow_workers_picture(snap_compare, flow_db, clock):
    """The pool's capacity, used and free above its workers."""
    assert snap_compare(make_app(flow_db, clock), terminal_size=SIZE,
                        run_before=keys_then_settle("2"))


def test_flow_waiting_job_detail_picture(snap_compare, flow_db, clock):
    """A job held by its key's limit: why, and its key."""
    assert snap_compare(make_app(flow_db, clock), terminal_size=SIZE,
                        run_before=keys_then_settle("slash", *"id:c1-c", "enter", "enter"))


def test_flow_runs_picture(snap_compare, flow_db, clock):
    """A finished GPU job: its needs, and its run's peak memory and CPU time."""
    assert snap_compare(make_app(flow_db, clock), terminal_size=SIZE,
                        run_before=keys_then_settle("slash", *"id:train-1", "enter", "enter",
                                                    "tab", "G"))


def test_the_help_and_the_palette_name_the_key_filter():
    from queuectl_tui.console.commands import ON_A_JOB
    from queuectl_tui.console.screens.help import KEYS
    from queuectl_tui.console.screens.dlq import DlqScreen
    from queuectl_tui.console.screens.jobs import JobsScreen
    everywhere = dict(KEYS[0][1])
    assert "key:c1" in everywhere["/"]
    assert any("key:c1" in help_text for _, help_text, _ in ON_A_JOB)
    assert "key:c1" in JobsScreen.FILTER_HINT and "key:c1" in DlqScreen.FILTER_HINT
