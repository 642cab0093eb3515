"""Issue 28, jobs that talk back, in the engine (SQLite and PostgreSQL, fake
clock): progress reports and what they are checked against, a new run hiding
the last run's progress, the ETA, the worker's writes, a busy database, results
and their bounds, what a dependent job is handed, the claim's pattern and the
metrics gauge."""

from __future__ import annotations

import json
import threading
import time

import pytest

from queuectl_tui.engine import batches, metrics, progress, reports
from queuectl_tui.engine.jobspec import JobSpec, from_mapping
from queuectl_tui.engine.progress import Progress
from queuectl_tui.engine.reads import job_dict
from queuectl_tui.errors import Conflict, NoResult, NotFound, UsageError


def claim(queue, worker: str = "w"):
    claimed = queue.claim(worker, 30)
    assert claimed is not None
    return claimed


def shown(queue, job_id: str):
    return job_dict(queue.get(job_id))["progress"]


# ------------------------------------------------------------------ what a report may say

@pytest.mark.parametrize("text, done, total", [
    ("40", 40, None), (" 40% ", 40, None), ("0", 0, None), ("100", 100, None),
    ("12.5", 12.5, None), ("120/500", 120, 500), ("0/3", 0, 3), ("3 / 3", 3, 3)])
def test_a_percentage_or_done_of_total_is_accepted(text, done, total):
    assert progress.parse(text) == Progress(done, total)


@pytest.mark.parametrize("text, says", [
    ("101", "0 to 100"), ("5/0", "above 0"), ("6/5", "more than the total"),
    ("-1", "plain digits"), ("abc", "plain digits"), ("1e5", "plain digits"),
    ("", "plain digits"), ("nan", "plain digits"), ("1/2/3", "plain digits"),
    ("٤٠", "plain digits")])
def test_a_report_that_makes_no_sense_is_refused(text, says):
    with pytest.raises(UsageError, match=says):
        progress.parse(text)


def test_a_message_is_one_short_line():
    assert progress.check_message("  copying files ") == "copying files"
    assert progress.check_message("") is None
    with pytest.raises(UsageError, match="the limit is 200"):
        progress.check_message("x" * 201)
    for bad in ("two\nlines", "a\x1b[2Jb", "tab\there", "c1\x9bx"):
        with pytest.raises(UsageError, match="control characters"):
            progress.check_message(bad)


@pytest.mark.parametrize("pattern, says", [
    ("(", "does not compile"), (r"\d+%", "0 groups"), (r"(\d+)/(\d+)/(\d+)", "3 groups"),
    ("(x)" + "y" * 200, "the limit is 200"), ("", "regular expression")])
def test_a_bad_progress_pattern_is_refused_and_nothing_is_enqueued(queue, pattern, says):
    with pytest.raises(UsageError, match=says):
        queue.enqueue(from_mapping({"command": "true", "progress_regex": pattern}))
    assert queue.counts().get("pending", 0) == 0


def test_a_line_gives_progress_only_when_its_numbers_make_sense():
    one, two = progress.compiled(r"(\d+)%"), progress.compiled(r"(\d+)/(\d+)")
    assert progress.from_line(one, "copying  45% done") == Progress(45)
    assert progress.from_line(two, "file 3/40") == Progress(3, 40)
    assert progress.from_line(one, "no number here") is None
    assert progress.from_line(one, "150%") is None  # not a percentage: ignored
    assert progress.from_line(two, "7/0") is None
    assert progress.from_line(one, "x" * 600 + " 50%") is None  # past MAX_LINE characters
    assert progress.compiled("(") is None and progress.compiled(r"\d") is None


# ------------------------------------------------------------------ reports and what shows

def test_a_report_shows_in_the_job_with_its_eta(queue, clock):
    queue.enqueue(JobSpec(command="true", id="j"))
    run = claim(queue)
    clock.advance(10)
    assert queue.report_progress("j", run.claim_token, progress.parse("120/480"),
                                 "copying", set_message=True)
    got = shown(queue, "j")
    # 10 s for a quarter: 30 s left at the report
    assert got == {"done": 120, "total": 480, "percent": 25, "message": "copying",
                   "at": got["at"], "eta_s": 30.0, "eta_at": got["eta_at"]}
    assert got["at"].endswith("Z") and got["eta_at"] > got["at"]
    clock.advance(5)
    assert queue.report_progress("j", None, progress.parse("50"))  # --job: any run of it
    again = shown(queue, "j")
    assert (again["percent"], again["total"], again["message"]) == (50, None, "copying")
    assert again["eta_s"] == 15.0  # 15 s for half
    assert queue.report_progress("j", None, progress.parse("0"), None, set_message=True)
    assert shown(queue, "j")["eta_s"] is None and shown(queue, "j")["message"] is None


def test_only_the_running_claim_may_report(queue):
    queue.enqueue(JobSpec(command="true", id="j"))
    queue.enqueue(JobSpec(command="true", id="later"))
    with pytest.raises(Conflict, match="is pending, not running"):
        queue.report_progress("j", None, progress.parse("10"))
    with pytest.raises(NotFound):
        queue.report_progress("nope", None, progress.parse("10"))
    run = claim(queue)
    with pytest.raises(Conflict, match="another claim"):
        queue.report_progress("j", "0" * 16, progress.parse("10"))
    with pytest.raises(Conflict, match="another claim"):
        queue.set_result("j", "0" * 16, "1")
    queue.finish(run, "w", exit_code=0, error=None)
    with pytest.raises(Conflict, match="is completed, not running"):
        queue.report_progress("j", run.claim_token, progress.parse("10"))
    assert shown(queue, "j") is None


def test_a_new_run_does_not_show_the_last_runs_progress(queue, clock):
    queue.enqueue(JobSpec(command="false", id="j", max_retries=1))
    first = claim(queue)
    queue.report_progress("j", first.claim_token, progress.parse("70"), "almost",
                          set_message=True)
    queue.finish(first, "w", exit_code=1, error="exit code 1")
    assert shown(queue, "j")["percent"] == 70  # the last run's, kept while it waits
    assert shown(queue, "j")["eta_s"] is None  # not running: no ETA
    clock.advance(60)  # the retry's backoff
    second = claim(queue)
    assert shown(queue, "j") is None
    assert queue.record_progress(second, Progress(5))
    # the earlier run's message does not come back with this run's report
    assert shown(queue, "j")["message"] is None and shown(queue, "j")["percent"] == 5


def test_a_worker_writes_only_for_the_claim_it_holds(queue):
    queue.enqueue(JobSpec(command="true", id="j"))
    run = claim(queue)
    assert queue.record_progress(run, Progress(3, 4))
    assert shown(queue, "j")["percent"] == 75
    stale = type(run)(**{**run.__dict__, "claim_token": "f" * 16})
    assert not queue.record_progress(stale, Progress(4, 4))
    assert shown(queue, "j")["done"] == 3


def _hold_the_job(queue, job_id: str, release: threading.Event, held: threading.Event) -> None:
    """Another connection holding what a report needs: SQLite's write lock, or
    (PostgreSQL) the job's row, as a long writer would."""
    try:
        with queue.db.atomic():
            if queue.backend.name == "sqlite":
                queue.db.execute_sql("UPDATE meta SET value = value WHERE key = 'none'")
            else:
                queue.db.execute_sql("SELECT 1 FROM job WHERE id = %s FOR UPDATE", (job_id,))
            held.set()
            release.wait(10)
    finally:
        queue.db.close()


def test_a_report_gives_up_on_a_locked_database_within_a_moment(queue):
    queue.enqueue(JobSpec(command="true", id="j"))
    run = claim(queue)
    release, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_the_job, args=(queue, "j", release, held))
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        recorded = queue.report_progress("j", run.claim_token, progress.parse("40"))
        took = time.monotonic() - started
        worker_wrote = queue.record_progress(run, Progress(41))
    finally:
        release.set()
        holder.join(10)
    assert recorded is False and worker_wrote is False
    assert took < 1.0, f"a report waited {took:.2f} s behind a writer"
    assert queue.report_progress("j", run.claim_token, progress.parse("42"))  # free again
    assert shown(queue, "j")["percent"] == 42
    # the wait is back to the usual one for every other write
    if queue.backend.name == "sqlite":
        assert queue.db.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 1000
        assert queue.db.writer_lock.wait_s > reports.LOCK_WAIT_S


# ------------------------------------------------------------------ results

def test_a_result_is_stored_read_and_bounded(queue):
    queue.enqueue(JobSpec(command="true", id="j"))
    with pytest.raises(NoResult, match="no result yet"):
        queue.result_of("j")
    with pytest.raises(NotFound):
        queue.result_of("nope")
    run = claim(queue)
    assert queue.set_result("j", run.claim_token, ' {"rows": 42, "name": "é"} ') == 26
    assert queue.result_of("j") == '{"rows": 42, "name": "é"}'
    shown_job = job_dict(queue.get("j"), with_output=True)
    assert shown_job["result"] == {"rows": 42, "name": "é"}
    for bad, says in (("{", "not valid JSON"), ("NaN", "not JSON"), ("", "empty"),
                      ('{"a": 1} x', "not valid JSON")):
        with pytest.raises(UsageError, match=says):
            queue.set_result("j", run.claim_token, bad)
    queue.config_set("result-max-bytes", "100")
    with pytest.raises(UsageError, match=r"result is 103 bytes; the limit is 100 \(config "
                                         r"result-max-bytes, at most 1,048,576\)"):
        queue.set_result("j", run.claim_token, json.dumps("x" * 101))
    assert queue.result_of("j") == '{"rows": 42, "name": "é"}'  # refused: nothing changed
    with pytest.raises(UsageError, match="between 2 and 1.04858e"):
        queue.config_set("result-max-bytes", str(2 << 20))


def test_a_dependent_is_handed_its_dependencies_results(queue):
    queue.enqueue(JobSpec(command="true", id="a"))
    queue.enqueue(JobSpec(command="true", id="b"))
    queue.enqueue(JobSpec(command="true", id="c", after=("a", "b")))
    queue.enqueue(JobSpec(command="true", id="alone"))
    for _ in range(2):
        run = claim(queue)
        assert not run.has_after
        if run.id == "a":
            queue.set_result("a", run.claim_token, "[1, 2]")
        queue.finish(run, "w", exit_code=0, error=None)
    dependent = claim(queue)
    assert (dependent.id, bool(dependent.has_after)) == ("c", True)
    assert queue.dependency_ids("c") == ["a", "b"]
    assert list(queue.dependency_results("c")) == [("a", "[1, 2]"), ("b", None)]
    assert list(queue.dependency_results("alone")) == []
    with pytest.raises(NotFound):
        list(queue.dependency_results("nope"))


# ------------------------------------------------------------------ patterns, claims, metrics

def test_the_claim_hands_over_the_jobs_pattern_else_its_queues(queue):
    queue.queue_set("logs", progress_regex=r"(\d+)%")
    assert queue.queue_get("logs")["progress_regex"] == r"(\d+)%"
    queue.enqueue(from_mapping({"command": "true", "id": "own", "queue": "logs",
                                "progress_regex": r"(\d+)/(\d+)"}))
    queue.enqueue(JobSpec(command="true", id="queues", queue="logs"))
    queue.enqueue(JobSpec(command="true", id="none"))
    got = {}
    for _ in range(3):
        run = claim(queue)
        got[run.id] = run.progress_regex
    assert got == {"own": r"(\d+)/(\d+)", "queues": r"(\d+)%", "none": None}
    assert job_dict(queue.get("own"))["progress_regex"] == r"(\d+)/(\d+)"


def test_a_big_file_keeps_each_jobs_pattern(queue, monkeypatch):
    monkeypatch.setattr(batches, "SLICE_ROWS", 5)
    specs = [from_mapping({"command": "true", "id": f"f{i}", "progress_regex": r"(\d+)%"})
             for i in range(12)]
    queue.enqueue_many(specs)
    assert {queue.get(f"f{i}").progress_regex for i in range(12)} == {r"(\d+)%"}


def test_metrics_show_the_running_jobs_progress_only(queue, clock):
    for job_id in ("a", "b", "c"):
        queue.enqueue(JobSpec(command="true", id=job_id, queue="q"))
    runs = {job_id: claim(queue) for job_id in ("a", "b", "c")}
    queue.record_progress(runs["a"], Progress(1, 4))
    queue.record_progress(runs["c"], Progress(90))
    queue.finish(runs["c"], "w", exit_code=0, error=None)
    text = metrics.exposition(queue)
    lines = [line for line in text.splitlines() if line.startswith("queuectl_job_progress")]
    assert lines == ['queuectl_job_progress_ratio{job="a",queue="q"} 0.25']
