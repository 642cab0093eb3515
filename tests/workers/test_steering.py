"""What a tick may ask of a running command (workers/steering.py), on the
runner itself with real processes: its process group stopped and continued,
its timeout's clock stopped meanwhile, an abort of a stopped group, and a
timeout extended between two ticks (the runner asks once more at the deadline)."""

from __future__ import annotations

import os
import time
from typing import Callable

from queuectl_tui.workers.runner import run_command
from queuectl_tui.workers.steering import Abort, Control


def group_states(pgid: int) -> dict[int, str]:
    """Pid -> state letter of every process in this process group (/proc)."""
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found[int(entry)] = fields[0]
    return found


def scripted(plan: Callable[[float, int], Control | None]) -> tuple[Callable, list[int]]:
    """A tick that asks `plan(seconds since the first tick, pid)`."""
    pid: list[int] = []
    began: list[float] = []

    def tick() -> Control | None:
        if not began:
            began.append(time.monotonic())
        return plan(time.monotonic() - began[0], pid[0])
    return tick, pid


def test_a_stopped_group_is_in_state_t_and_its_timeout_waits(tmp_path):
    seen: dict[str, dict[int, str]] = {}

    def plan(elapsed: float, pid: int) -> Control:
        if elapsed < 0.15:  # the shell has started its children by then
            return Control()
        if elapsed < 1.75:
            if elapsed > 0.45:
                seen.setdefault("stopped", group_states(pid))
            return Control(stopped=True)
        return Control(stopped=False)

    tick, pid = scripted(plan)
    started = time.monotonic()
    # Runs about 0.8 s in all, on both sides of the stop: past its timeout in wall time.
    result = run_command("sleep 0.3 & wait; echo half; sleep 0.6; echo end", timeout=1.5,
                         open_log=None, on_start=pid.append, tick=tick, first_tick=0.05,
                         tick_every=0.05)
    took = time.monotonic() - started
    assert result.error is None and result.stdout_tail == "half\nend\n", result
    assert len(seen["stopped"]) >= 2 and set(seen["stopped"].values()) == {"T"}, seen
    assert took > 2.0 and 1.4 < result.paused_s < took - 0.5, (took, result.paused_s)


def test_an_abort_continues_a_stopped_group_so_it_ends(tmp_path):
    def plan(elapsed: float, pid: int) -> Control:
        if elapsed < 0.3:
            return Control(stopped=True)
        return Control(Abort("cancelled", "cancelled while running", grace=30))

    tick, pid = scripted(plan)
    started = time.monotonic()
    result = run_command("trap 'echo got TERM; exit 3' TERM; sleep 60 & wait", timeout=None,
                         open_log=None, on_start=pid.append, tick=tick, first_tick=0.05,
                         tick_every=0.05)
    assert time.monotonic() - started < 5  # not the 30 s grace: the TERM was delivered
    assert result.ended == "cancelled" and result.exit_code == 3
    assert "got TERM" in result.stdout_tail


def test_a_timeout_extended_since_the_last_tick_is_read_at_the_deadline(tmp_path):
    asked: list[float] = []

    def plan(elapsed: float, pid: int) -> Control:
        asked.append(elapsed)
        return Control(timeout=1.5 if len(asked) > 1 else None)

    tick, pid = scripted(plan)
    # One tick at 0.05 s, then none for a minute but the one at the 0.5 s deadline.
    ok = run_command("sleep 1; echo ok", timeout=0.5, open_log=None, on_start=pid.append,
                     tick=tick, first_tick=0.05, tick_every=60)
    assert ok.error is None and ok.stdout_tail == "ok\n", ok
    assert len(asked) == 2 and 0.4 < asked[1] < 0.8, asked
    asked.clear()
    late = run_command("sleep 5", timeout=0.5, open_log=None, on_start=pid.append,
                       tick=tick, first_tick=0.05, tick_every=60)
    assert late.ended == "timeout"
    assert late.error == "timed out after 1.5 s (0.5 s, extended by 1 s)"


def test_a_tick_that_returns_an_abort_still_works(tmp_path):
    """The finish hooks' runner ticks with a bare Abort (or None)."""
    result = run_command("sleep 30", timeout=None, open_log=None,
                         tick=lambda: Abort("stopped", "pool stopping", grace=5),
                         first_tick=0.05, tick_every=0.05)
    assert result.ended == "stopped" and result.error == "pool stopping"
