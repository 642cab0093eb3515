"""The retry policy on its own: backoff, no-retry-on and what a rescue does to a
job, as pure functions (no database, no clock)."""

from __future__ import annotations

import pytest

from queuectl_tui.engine.retry_policy import (backoff_delay, not_retried, out_of_retries,
                                              rescue)
from queuectl_tui.engine.states import State


@pytest.mark.parametrize("base, attempts, most, delay", [
    (2.0, 1, 3600.0, 2.0),
    (2.0, 2, 3600.0, 4.0),
    (2.0, 3, 3600.0, 8.0),
    (3.0, 4, 3600.0, 81.0),
    (1.5, 2, 3600.0, 2.25),
    (10.0, 2, 50.0, 50.0),  # capped
    (10.0, 1, 50.0, 10.0),
])
def test_backoff_is_base_to_the_attempts_capped_at_the_most(base, attempts, most, delay):
    assert backoff_delay(base, attempts, most) == pytest.approx(delay)


def test_backoff_grows_with_each_attempt_until_the_cap():
    delays = [backoff_delay(2.0, n, 20.0) for n in range(1, 7)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]


@pytest.mark.parametrize("attempts, max_retries, out", [
    (1, 0, True), (1, 1, False), (2, 1, True), (3, 3, False), (4, 3, True)])
def test_a_job_is_out_of_retries_after_its_first_run_and_max_retries_more(
        attempts, max_retries, out):
    assert out_of_retries(attempts, max_retries) is out


@pytest.mark.parametrize("codes, exit_code, ended, why", [
    (None, 1, "exit", None),
    ("", 1, "exit", None),
    ("126,127", 127, "exit", "exit code 127 is in no_retry_on"),
    ("126,127", 1, "exit", None),
    ("timeout", None, "timeout", "timeout is in no_retry_on"),
    ("timeout", 124, "exit", None),  # a command's own exit 124 is not a timeout
    ("124", None, "timeout", None),  # nor is a timeout an exit code
    ("1,timeout", 1, "exit", "exit code 1 is in no_retry_on"),
    ("1", 1, "lost", None),  # its worker lost the outcome: no exit code to judge
    ("1", None, "exit", None),
])
def test_not_retried_names_the_rule_that_sends_a_failure_to_the_dlq(
        codes, exit_code, ended, why):
    assert not_retried(codes, exit_code, ended) == why


def _rescue(**overrides):
    given = dict(worker_id="w1", worker_known_dead=False, cancel_requested=False,
                 counted=True, attempts=1, max_retries=3, now=100.0)
    return rescue(**{**given, **overrides})


def test_a_lost_worker_s_job_runs_again_at_once_not_after_a_backoff():
    verdict = _rescue()
    assert verdict.to == State.PENDING
    assert verdict.note == "worker w1 lost; lease expired"
    assert verdict.fields == {"run_at": 100.0}


def test_a_dead_worker_is_named_as_died():
    assert _rescue(worker_known_dead=True).note == "worker w1 died"


def test_a_rescue_counts_the_attempt_so_a_job_that_kills_its_worker_ends_dead():
    verdict = _rescue(attempts=4, max_retries=3)
    assert verdict.to == State.DEAD
    assert verdict.fields == {"finished_at": 100.0}


def test_a_job_asked_to_cancel_ends_cancelled_whatever_its_retries():
    verdict = _rescue(cancel_requested=True, attempts=9, max_retries=0)
    assert verdict.to == State.CANCELLED
    assert verdict.note == "cancelled (worker w1 lost; lease expired)"
    assert verdict.fields == {"finished_at": 100.0}


def test_a_pool_stopped_by_force_gives_the_attempt_back():
    verdict = _rescue(counted=False, attempts=4, max_retries=3)
    assert verdict.to == State.PENDING
    assert verdict.note == "worker w1 lost; lease expired (stopped now; attempt not counted)"
    assert verdict.fields == {"run_at": 100.0, "attempts": 3}
