"""The console's full garbage collections wait for a quiet keyboard
(console/collector.py): a pass over a console's objects took 35-270 ms, and
every one that ran during keys delayed the next key by as much."""

from __future__ import annotations

import gc

from queuectl_tui.console import collector
from queuectl_tui.console.collector import IdleCollector


class FakeGc:
    def __init__(self) -> None:
        self.threshold = (700, 10, 10)
        self.calls: list[str] = []

    def get_threshold(self):
        return self.threshold

    def set_threshold(self, *t):
        self.threshold = t

    def freeze(self):
        self.calls.append("freeze")

    def unfreeze(self):
        self.calls.append("unfreeze")

    def collect(self):
        self.calls.append("collect")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_pass_waits_for_a_quiet_keyboard_and_freezes_what_survives():
    fake, clock = FakeGc(), Clock()
    c = IdleCollector(clock, fake)
    c.start()
    assert fake.threshold == (700, 10, collector.NEVER) and fake.calls == ["freeze"]
    fake.calls.clear()
    for _ in range(int(collector.EVERY_S * 2)):  # a key every half second
        clock.t += 0.5
        c.saw_input()
        assert not c.tick(), "a pass ran between keys"
    clock.t += collector.QUIET_S
    assert c.tick() and fake.calls == ["collect", "freeze"]
    fake.calls.clear()
    clock.t += collector.QUIET_S
    assert not c.tick(), "a second pass before EVERY_S"


def test_a_pass_runs_at_the_latest_after_max_wait_even_while_typing():
    fake, clock = FakeGc(), Clock()
    c = IdleCollector(clock, fake)
    c.start()
    while clock.t < 1000.0 + collector.MAX_WAIT_S - 0.5:
        clock.t += 0.5
        c.saw_input()
        assert not c.tick()
    clock.t += 0.5
    c.saw_input()
    assert c.tick()


def test_no_freeze_under_a_dialog_and_a_thaw_now_and_then():
    fake, clock = FakeGc(), Clock()
    c = IdleCollector(clock, fake)
    c.start()
    fake.calls.clear()
    clock.t += collector.EVERY_S
    assert c.tick(can_freeze=False) and fake.calls == ["collect"]
    fake.calls.clear()
    clock.t += collector.THAW_EVERY_S
    assert c.tick() and fake.calls == ["unfreeze", "collect", "freeze"]


def test_stop_gives_the_process_its_collector_back():
    fake, clock = FakeGc(), Clock()
    c = IdleCollector(clock, fake)
    c.start()
    c.stop()
    assert fake.threshold == (700, 10, 10) and fake.calls[-1] == "unfreeze"
    assert not c.tick(), "stopped: no more passes"


async def test_a_live_console_takes_over_full_passes_and_gives_them_back(tmp_path):
    from queuectl_tui.console.app import ConsoleApp
    before = gc.get_threshold()
    app = ConsoleApp(str(tmp_path / "q.db"), refresh_interval=60.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert gc.get_threshold()[2] == collector.NEVER
        assert gc.get_freeze_count() > 0
        seen = app.collector.last_input
        app.collector.monotonic = lambda: seen + 5.0
        await pilot.press("j")
        assert app.collector.last_input == seen + 5.0, "a key is noted as input"
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
