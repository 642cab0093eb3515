"""Signals on the engine's behalf (workers/signals.py), and a Queue built
without them: it refuses to rescue a run on this host rather than take the
job back while the old run may still be alive."""

from __future__ import annotations

import os
import subprocess

import pytest

from queuectl_tui.clock import FakeClock, Ids
from queuectl_tui.engine import CLAIM_MARKER, JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from queuectl_tui.errors import QueuectlError
from queuectl_tui.workers.signals import LocalProcesses, processes_of_claim
from tests.helpers import pid_alive, wait_for


def marked(token: str) -> subprocess.Popen:
    """A shell with a child of its own, both carrying a run's marker."""
    return subprocess.Popen(["sh", "-c", "sleep 60 & sleep 61; wait"],
                            env={**os.environ, CLAIM_MARKER: token}, start_new_session=True)


def test_a_runs_leftovers_are_killed_by_its_marker_and_no_other_run_is():
    doomed, other = marked("tok-doomed"), marked("tok-other")
    try:
        wait_for(lambda: len(processes_of_claim("tok-doomed")) >= 3, 10, message="the run")
        wait_for(lambda: len(processes_of_claim("tok-other")) >= 3, 10, message="the other")
        leftovers = processes_of_claim("tok-doomed")

        LocalProcesses().kill_run(None, "tok-doomed")

        assert doomed.wait(timeout=10) == -9
        wait_for(lambda: not any(pid_alive(pid) for pid in leftovers), 10,
                 message="the run's every process to die")
        assert all(pid_alive(pid) for pid in processes_of_claim("tok-other"))
        assert other.poll() is None
    finally:
        for proc in (doomed, other):
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()


def test_asking_to_stop_sends_sigterm_and_says_when_the_process_is_gone():
    child = subprocess.Popen(["sleep", "60"])
    assert LocalProcesses().ask_to_stop(child.pid)
    assert child.wait(timeout=10) == -15
    assert not LocalProcesses().ask_to_stop(child.pid)


@pytest.fixture
def lapsed(tmp_path):
    """A job claimed on this host whose lease ran out long ago, on a Queue
    given no ProcessControl."""
    opened = open_database(str(tmp_path / "q.db"))
    clock = FakeClock()
    queue = Queue(opened, clock=clock, ids=Ids(), host="here")
    queue.enqueue(JobSpec(command="true", id="j"))
    assert queue.claim("w", 10).id == "j"
    clock.advance(3600)
    yield opened, clock
    opened.close()


def test_a_queue_without_process_control_refuses_to_rescue_a_run_of_this_host(lapsed):
    opened, clock = lapsed
    bare = Queue(opened, clock=clock, ids=Ids(), host="here")
    with pytest.raises(QueuectlError, match="without a ProcessControl"):
        bare.rescue()
    assert bare.get("j").state == "processing"

    given = Queue(opened, clock=clock, ids=Ids(), host="here", processes=LocalProcesses())
    assert given.rescue() == ["j"]
    assert given.get("j").state == "pending"
