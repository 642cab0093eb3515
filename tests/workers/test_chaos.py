"""The chaos run (tests/chaos_run.py) at a small setting: load, kills, graceful stop."""

from __future__ import annotations

import pytest

from tests.chaos_run import main as chaos_main, run


def args(**kw):
    import argparse
    base = dict(jobs=300, workers=4, pools=2, kill_every=0.0, stop_after=0.0, job_ms=0.0,
                lease=10.0, durability="full", timeout=240.0, seed=1, dir=None,
                close_output=0.0, hold_every=0.0, hold_seconds=3.0, db=None,
                deps=0.0, late_pairs=0, keyed=0, hooks=False)
    base.update(kw)
    return argparse.Namespace(**base)


def test_load_every_job_exactly_once(tmp_path):
    report = run(args(dir=str(tmp_path)))
    assert report["ok"], report
    assert report["completed"] == 300 and report["reruns"] == 0


def test_sigkill_chaos_loses_nothing(tmp_path):
    report = run(args(jobs=250, job_ms=40, kill_every=0.5, lease=2.0, dir=str(tmp_path)))
    assert report["ok"], report
    assert report["kills"] >= 3 and report["rescues"] >= 1
    assert report["lost"] == 0 and report["stuck_processing"] == 0
    assert report["completed_twice"] == 0
    # Every rescue follows a kill (a delay is measured from it), within the lease
    # plus one scan (and a little slack for a loaded CI box).
    assert report["worst_rescue_delay_s"] is not None, report
    assert report["worst_rescue_delay_s"] < 2.0 + 2.5, report


def test_long_writers_and_closed_output_rescue_no_live_job(tmp_path):
    """Issue 14: with another process holding the write lock for 2.5 leases now and
    then, and half the jobs closing stdout/stderr, no live job is rescued, none
    runs twice, none is lost."""
    report = run(args(jobs=120, job_ms=400, lease=2.0, hold_every=8.0, hold_seconds=5.0,
                      close_output=0.5, dir=str(tmp_path)))
    assert report["ok"], report
    assert report["long_writes"] >= 1
    assert report["rescues"] == 0 and report["reruns"] == 0, report
    assert report["completed"] == 120 and report["completed_twice"] == 0


@pytest.mark.postgres
def test_kills_and_long_writers_on_postgres_lose_nothing(pg_database, tmp_path):
    """The same mix on PostgreSQL: SIGKILLs, `LOCK TABLE job` held for 2.5 leases,
    jobs closing their output. Nothing lost, stuck or completed twice."""
    from tests.conftest import _reset_pg
    _reset_pg(pg_database)
    report = run(args(jobs=150, job_ms=200, lease=2.0, kill_every=1.0, hold_every=6.0,
                      hold_seconds=5.0, close_output=0.5, db=pg_database, dir=str(tmp_path)))
    assert report["ok"], report
    assert report["long_writes"] >= 1 and report["kills"] >= 1
    assert report["lost"] == 0 and report["stuck_processing"] == 0
    assert report["completed_twice"] == 0


MIX = dict(deps=0.3, late_pairs=25, keyed=20, hooks=True)


def _assert_mix_held(report):
    assert report["ok"], report
    assert report["mix_enqueue_failures"] == [], report
    assert report["dependencies"] >= 50 and report["stuck_blocked"] == 0, report
    assert report["started_before_dependency"] == 0, report
    assert report["key_held_twice"] == 0, report
    assert report["hooks_missing"] == 0 and report["hooks_left_queued"] == 0, report
    assert report["lost"] == 0 and report["completed_twice"] == 0, report


def test_dependencies_keys_and_hooks_under_kills(tmp_path):
    """Issue 25: dependencies (some enqueued as what they wait for finishes),
    keyed enqueues racing from several processes and a finish hook on every job,
    while workers and whole pools are SIGKILLed: nothing lost or stuck blocked,
    no dependent early, no key held twice, every hook run at least once."""
    report = run(args(jobs=200, job_ms=30, kill_every=1.0, lease=2.0, dir=str(tmp_path), **MIX))
    _assert_mix_held(report)
    assert report["kills"] >= 2


@pytest.mark.postgres
def test_dependencies_keys_and_hooks_under_kills_on_postgres(pg_database, tmp_path):
    from tests.conftest import _reset_pg
    _reset_pg(pg_database)
    report = run(args(jobs=150, job_ms=30, kill_every=1.0, lease=2.0, db=pg_database,
                      dir=str(tmp_path), **MIX))
    _assert_mix_held(report)
    assert report["kills"] >= 2


def test_graceful_stop_under_load(tmp_path):
    report = run(args(jobs=400, job_ms=60, stop_after=2.0, dir=str(tmp_path)))
    assert report["ok"], report
    assert report["rescues"] == 0, "a graceful stop must not leave jobs to rescue"
    # A stop arriving during the commit that records one job and claims the next
    # hands that next job back unstarted: at most one per worker.
    assert report["handed_back_unstarted"] <= report["workers"], report
    assert report["claimed_after_stop"] == 0
    assert report["completed"] + report["pending"] == 400 and report["pending"] > 0


def test_cli_entry_reports_failure_as_exit_code(tmp_path, capsys):
    assert chaos_main(["--jobs", "20", "--workers", "2", "--dir", str(tmp_path)]) == 0
    assert '"ok": true' in capsys.readouterr().out
