"""A running job's snooze, extend, pause and resume, in the engine with a fake
clock, on SQLite and PostgreSQL (the `queue` fixture): what each writes, what
the worker's lease renewal reads back, what the outcome makes of a snooze,
and every refusal changing nothing."""

from __future__ import annotations

import pytest

from queuectl_tui.engine import config, job_dict
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.metrics import read as read_metrics
from queuectl_tui.engine.storage.models import Attempt, Event
from queuectl_tui.errors import Conflict, UsageError


def running(q, job_id="j", **spec):
    q.enqueue(JobSpec(command="true", id=job_id, **spec))
    claimed = q.claim("w1", 30)
    assert claimed is not None and claimed.id == job_id
    return claimed


def notes(job_id: str) -> list[str]:
    return [e.note for e in Event.select().where(Event.job_id == job_id).order_by(Event.seq)
            if e.note]


def finish(queue, claimed, *, code=-15, error="killed by SIGTERM", ended="exit"):
    return queue.finish_and_claim(claimed, "w1", exit_code=code, error=error, ended=ended)


# ---------------------------------------------------------------- snooze

def test_a_snooze_puts_the_job_back_after_its_delay_without_an_attempt(queue, clock):
    config.set_value("max-snoozes", 4)
    claimed = running(queue, max_retries=0)
    asked = queue.snooze("j", claimed.claim_token, 300)
    assert (asked["number"], asked["max_snoozes"], asked["snooze_for"]) == (1, 4, 300)
    assert queue.extend_lease(claimed, 30).snooze  # its worker would stop a run that lingers
    outcome = finish(queue, claimed)
    assert outcome.state == "pending" and outcome.snoozed == "snoozed for 5m (1 of 4)"
    job = queue.get("j")
    assert (job.attempts, job.runs, job.snoozes, job.snooze_for) == (0, 1, 1, None)
    assert job.run_at == pytest.approx(clock.now() + 300)
    assert job.last_error is None
    [run] = Attempt.select().where(Attempt.job_id == "j")
    assert (run.reason, run.error, run.exit_code) == ("snoozed", None, -15)
    assert notes("j")[-1] == "snoozed for 5m (1 of 4)"
    assert queue.claim("w1", 30) is None  # not due before its delay
    clock.advance(301)
    again = queue.claim("w1", 30)
    assert (again.id, again.attempts, again.runs) == ("j", 1, 2)  # the same attempt again
    assert queue.get("j").snooze_for is None and not queue.extend_lease(again, 30).snooze


def test_exit_75_snoozes_for_the_configured_delay(queue, clock):
    config.set_value("snooze-delay", 90)
    claimed = running(queue)
    outcome = finish(queue, claimed, code=75, error="exit code 75")
    assert outcome.state == "pending"
    job = queue.get("j")
    assert (job.attempts, job.snoozes) == (0, 1)
    assert job.run_at == pytest.approx(clock.now() + 90)
    other = running(queue, "k")
    assert finish(queue, other, code=74, error="exit code 74").state == "failed"


def test_the_snooze_past_the_limit_is_a_failure_by_the_retry_rules(queue, clock):
    config.set_value("max-snoozes", 2)
    queue.enqueue(JobSpec(command="true", id="j", max_retries=1))
    for number in (1, 2, 3):
        claimed = queue.claim("w1", 30)
        queue.snooze("j", claimed.claim_token, 1)
        outcome = finish(queue, claimed)
        clock.advance(2)
        if number <= 2:
            assert outcome.state == "pending", number
    reason = "snoozed more than 2 times (max-snoozes 2)"
    assert outcome.state == "failed"  # a retry left: failed, with its backoff
    job = queue.get("j")
    assert (job.attempts, job.snoozes, job.last_error) == (1, 2, reason)
    assert notes("j")[-1] == reason
    clock.advance(10)
    claimed = queue.claim("w1", 30)
    outcome = finish(queue, claimed, code=75, error="exit code 75")
    assert outcome.state == "dead" and queue.get("j").last_error == reason
    queue.retry_dead(["j"])  # a new run series: snoozes start again
    assert (queue.get("j").snoozes, queue.get("j").attempts) == (0, 0)


def test_a_completed_run_ignores_a_snooze_it_asked_for(queue):
    claimed = running(queue)
    queue.snooze("j", claimed.claim_token, 60)
    outcome = finish(queue, claimed, code=0, error=None)  # it trapped the signal, exited 0
    assert outcome.state == "completed" and queue.get("j").snoozes == 0


def test_snooze_refusals_change_nothing(queue):
    queue.enqueue(JobSpec(command="true", id="waiting", delay=3600))
    with pytest.raises(Conflict, match="only a running job can snooze"):
        queue.snooze("waiting", None, 60)
    claimed = running(queue, "j")
    with pytest.raises(Conflict, match="this run of job j is over"):
        queue.snooze("j", "not-this-run", 60)
    with pytest.raises(UsageError, match="at most 30d"):
        queue.snooze("j", claimed.claim_token, 31 * 86400)
    assert queue.get("j").snooze_for is None
    assert queue.snooze("j", None, 60)["id"] == "j"  # from outside: whatever run holds it


# ---------------------------------------------------------------- extend

def test_extend_moves_the_timeout_its_worker_reads(queue):
    claimed = running(queue, timeout=10)
    assert queue.extend_lease(claimed, 30).timeout == 10
    done = queue.extend("j", claimed.claim_token, 5)
    assert (done["extended_by"], done["effective_timeout"]) == (5, 15)
    queue.extend("j", claimed.claim_token, 2.5)
    assert queue.extend_lease(claimed, 30).timeout == 17.5
    assert job_dict(queue.get("j"))["extended_by"] == 7.5
    assert notes("j")[-1] == "timeout extended by 2.5s to 17.5s"
    finish(queue, claimed, code=0, error=None)
    queue.requeue(["j"])
    again = queue.claim("w1", 30)
    assert queue.extend_lease(again, 30).timeout == 10  # every run starts from its own


def test_extend_stops_at_the_queues_max_timeout(queue):
    row = queue.queue_max_timeout("slow", 20)
    assert row["max_timeout"] == 20
    assert next(q for q in queue.queue_list() if q["name"] == "slow")["max_timeout"] == 20
    claimed = running(queue, queue="slow", timeout=10)
    queue.extend("j", claimed.claim_token, 10)  # exactly the most
    with pytest.raises(Conflict, match="past queue slow's max-timeout 20s"):
        queue.extend("j", claimed.claim_token, 1)
    assert queue.get("j").extended_by == 10
    assert queue.queue_max_timeout("slow", None)["max_timeout"] is None
    queue.extend("j", claimed.claim_token, 1)
    with pytest.raises(UsageError):
        queue.queue_max_timeout("slow", -1)


def test_extend_refusals_change_nothing(queue):
    claimed = running(queue)
    with pytest.raises(Conflict, match="has no timeout to extend"):
        queue.extend("j", claimed.claim_token, 5)
    other = running(queue, "k", timeout=5)
    with pytest.raises(Conflict, match="this run of job k is over"):
        queue.extend("k", claimed.claim_token, 5)
    with pytest.raises(UsageError):
        queue.extend("k", other.claim_token, 0)
    with pytest.raises(UsageError):
        queue.extend("k", other.claim_token, 31 * 86400)
    assert queue.get("k").extended_by is None


# ---------------------------------------------------------------- pause and resume

def test_pause_and_resume_are_requests_its_worker_reads(queue, clock):
    claimed = running(queue)
    assert queue.pause(["j"]) == [("j", "pausing")]
    assert job_dict(queue.get("j"))["pause_requested"] is True
    assert not job_dict(queue.get("j"))["paused"]  # its worker has not acted yet
    clock.advance(1)
    lease = queue.extend_lease(claimed, 30)
    assert lease.paused is True and lease.held
    shown = job_dict(queue.get("j"))
    assert shown["paused"] and shown["paused_at"] is not None
    assert queue.paused_count() == 1 and queue.paused_count("default") == 1
    assert queue.pause(["j"]) == [("j", "paused")]  # asked twice: one pause
    clock.advance(4)
    assert queue.extend_lease(claimed, 30).paused is True  # the pause's start stays
    assert queue.resume(["j"]) == [("j", "resuming")]
    clock.advance(1)
    assert queue.extend_lease(claimed, 30).paused is False
    job = queue.get("j")
    assert job.paused_at is None and job.paused_for == pytest.approx(5)  # from the stop
    assert queue.resume(["j"]) == [("j", "running")]
    assert [n for n in notes("j") if "requested" in n] == [
        "pause requested: SIGSTOP to its process group",
        "resume requested: SIGCONT to its process group"]
    done = queue.finish_and_claim(claimed, "w1", exit_code=0, error=None, paused_s=6.0)
    assert done.state == "completed"
    shown = job_dict(queue.get("j"))
    assert (shown["paused"], shown["paused_for"]) == (False, 6.0)


def test_pause_refuses_what_is_not_running_saying_what_would_work(queue):
    queue.enqueue(JobSpec(command="true", id="waiting", delay=3600))
    with pytest.raises(Conflict, match=r"pending; only a running job can be paused: .*hold"):
        queue.pause(["waiting"])
    claimed = running(queue, "j")
    with pytest.raises(Conflict):  # all or nothing
        queue.pause(["j", "waiting"])
    assert not queue.get("j").pause_requested
    queue.cancel(["j"])
    with pytest.raises(Conflict, match="being cancelled"):
        queue.pause(["j"])
    finish(queue, claimed, ended="cancelled")
    with pytest.raises(Conflict, match="cancelled; only a running job can be resumed: it has "
                                       "finished"):
        queue.resume(["j"])


def test_a_claim_starts_every_run_unpaused_unextended_unsnoozed(queue, clock):
    claimed = running(queue, timeout=5)
    queue.pause(["j"])
    queue.extend("j", claimed.claim_token, 5)
    queue.snooze("j", claimed.claim_token, 0)
    queue.extend_lease(claimed, 30)
    assert queue.rescue("w1") == ["j"]  # its worker died while it was paused
    again = queue.claim("w2", 30)
    lease = queue.extend_lease(again, 30)
    assert (lease.paused, lease.timeout, lease.snooze) == (False, 5, False)
    job = queue.get("j")
    assert (job.pause_requested, job.paused_at, job.paused_for) == (False, None, None)


def test_a_stopping_worker_resumes_its_paused_job(queue, clock):
    claimed = running(queue)
    queue.pause(["j"])
    queue.extend_lease(claimed, 30)
    clock.advance(3)
    assert queue.resume_for_stop(claimed)
    assert queue.extend_lease(claimed, 30).paused is False
    job = queue.get("j")
    assert job.paused_at is None and job.paused_for == pytest.approx(3)
    assert notes("j")[-1] == "resumed: its worker is stopping"


def test_metrics_count_the_paused_jobs(queue, clock):
    claimed = running(queue, queue="mail")
    queue.pause(["j"])
    queue.extend_lease(claimed, 30)
    snap = read_metrics(queue.db, queue.backend, clock.now())
    assert snap.paused == {"mail": 1}
