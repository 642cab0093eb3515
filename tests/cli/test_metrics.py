"""Metrics: `queuectl metrics` and a pool's /metrics, through real processes.

The numbers are read from the database at scrape time, so they must agree with
`status --json`, `queue list --json` and `dlq list --json`; the finished
counters must not go down when retention prunes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import cli_env, cli_json, run_cli, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, for every sample."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def scrape(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert resp.status == 200
            return parse(resp.read().decode())
    except (urllib.error.URLError, ConnectionError):
        return None  # not serving yet


def metrics_command(db) -> dict:
    result = run_cli(db, "metrics")
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def enqueue(db, *args: str) -> None:
    result = run_cli(db, "enqueue", *args)
    assert result.returncode == 0, result.stderr


def run_some_jobs(db, pools, *extra: str):
    """Three completed jobs in `default`, two dead in `mail`, one waiting an hour
    in `later`; returns the pool once they are done."""
    for _ in range(3):
        enqueue(db, "true")
    for _ in range(2):
        enqueue(db, "--queue", "mail", "--max-retries", "0", "false")
    enqueue(db, "--queue", "later", "--delay", "1h", "true")
    pool = pools(2, extra=extra)

    def done() -> bool:
        counts = cli_json(db, "status")["counts"]
        return counts["completed"] == 3 and counts["dead"] == 2

    wait_for(done, 30, message="3 completed and 2 dead jobs")
    return pool


def test_pool_serves_metrics_that_agree_with_status(db, pools):
    port = free_port()
    pool = run_some_jobs(db, pools, "--metrics-port", str(port))
    pool.wait_ready()

    def agreed():
        """One scrape between two equal `status` readings (workers settle)."""
        before = cli_json(db, "status")
        samples = scrape(port)
        after = cli_json(db, "status")
        if samples is None or before["active_workers"] != after["active_workers"]:
            return None
        live = sum(value(samples, "queuectl_workers", state=s)
                   for s in ("idle", "busy", "stopping"))
        return (samples, after) if live == after["active_workers"] else None

    samples, status = wait_for(agreed, 30, message="a scrape that agrees with status")
    assert status["active_workers"] == 2
    for q in cli_json(db, "queue", "list"):
        for state in ("pending", "processing", "completed", "failed", "dead", "cancelled"):
            assert value(samples, "queuectl_jobs", queue=q["name"], state=state) \
                == q["counts"].get(state, 0), (q["name"], state)
    totals = {state: sum(v for (name, labels), v in samples.items() if name == "queuectl_jobs"
                         and dict(labels)["state"] == state) for state in status["counts"]}
    assert totals == status["counts"]
    assert value(samples, "queuectl_jobs_finished_total", queue="default",
                 outcome="completed") == 3
    assert value(samples, "queuectl_jobs_finished_total", queue="mail", outcome="dead") == 2
    dlq = cli_json(db, "dlq", "list")
    assert sum(v for (name, _), v in samples.items() if name == "queuectl_dlq_jobs") == len(dlq)
    assert value(samples, "queuectl_dlq_jobs", queue="mail") == 2
    # Durations: every run of the last 10 minutes, per queue (bucket +Inf = count).
    assert value(samples, "queuectl_job_duration_seconds_bucket", queue="default",
                 le="+Inf") == 3
    assert value(samples, "queuectl_job_duration_seconds_gcount", queue="mail") == 2
    assert value(samples, "queuectl_pickup_delay_seconds_gcount", queue="default") == 3
    # The job an hour away is not due: nothing of `later` has waited.
    assert value(samples, "queuectl_oldest_due_job_age_seconds", queue="later") == 0
    assert value(samples, "queuectl_jobs", queue="later", state="pending") == 1
    # The command prints the same numbers (workers aside, which may move).
    printed = metrics_command(db)
    for key, v in samples.items():
        if key[0] in ("queuectl_jobs", "queuectl_jobs_finished_total", "queuectl_dlq_jobs"):
            assert printed[key] == v, key


def test_counters_do_not_go_down_when_jobs_are_pruned_or_purged(db, pools):
    pool = run_some_jobs(db, pools)
    pool.close()
    before = metrics_command(db)
    assert value(before, "queuectl_jobs", queue="default", state="completed") == 3
    purged = run_cli(db, "dlq", "purge", "--yes", "--json")  # removed by hand: counted too
    assert purged.returncode == 0, purged.stderr
    assert value(metrics_command(db), "queuectl_jobs_finished_total", queue="mail",
                 outcome="dead") == 2
    pruned = run_cli(db, "prune", "--older-than", "0", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["pruned"] == 3
    after = metrics_command(db)
    assert value(after, "queuectl_jobs", queue="default", state="completed") == 0
    assert value(after, "queuectl_jobs", queue="mail", state="dead") == 0
    for key, v in before.items():
        if key[0] == "queuectl_jobs_finished_total":
            assert after[key] >= v, key
    assert value(after, "queuectl_jobs_finished_total", queue="default",
                 outcome="completed") == 3
    assert value(after, "queuectl_jobs_finished_total", queue="mail", outcome="dead") == 2
    # Pruning again (nothing left) counts nothing twice.
    assert run_cli(db, "prune", "--older-than", "0").returncode == 0
    assert metrics_command(db) == after


def test_metrics_output_parses_and_has_help_for_every_family(db_path):
    enqueue(db_path, "true")
    text = run_cli(db_path, "metrics").stdout
    families = list(text_string_to_metric_families(text))
    names = {f.name for f in families}
    assert {"queuectl_jobs", "queuectl_jobs_finished", "queuectl_dlq_jobs",
            "queuectl_oldest_due_job_age_seconds", "queuectl_workers",
            "queuectl_job_duration_seconds", "queuectl_pickup_delay_seconds"} <= names
    assert all(f.documentation for f in families if f.name.startswith("queuectl_"))
    samples = parse(text)
    assert value(samples, "queuectl_jobs", queue="default", state="pending") == 1
    assert value(samples, "queuectl_oldest_due_job_age_seconds", queue="default") >= 0


def test_metrics_of_a_missing_database_is_an_error_not_a_new_file(tmp_path):
    missing = tmp_path / "nope.db"
    result = run_cli(missing, "metrics")
    assert result.returncode == 5 and "no database" in result.stderr
    assert not missing.exists()


@pytest.mark.parametrize("bad", ["0", "65536", "abc", "-1", "", "80.5", "１２３"])
def test_bad_metrics_port_is_a_one_line_usage_error(db_path, bad):
    result = run_cli(db_path, "worker", "start", "--metrics-port", bad)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--metrics-port" in result.stderr and "1 to 65535" in result.stderr
    assert not db_path.exists()  # refused before anything opened the database


def test_metrics_host_without_port_is_a_usage_error(db_path):
    result = run_cli(db_path, "worker", "start", "--metrics-host", "0.0.0.0")
    assert result.returncode == 2
    assert result.stderr.strip() == "queuectl: error: --metrics-host goes with --metrics-port PORT"


def test_port_in_use_is_a_clear_error_and_starts_no_worker(db_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(db_path, "worker", "start", "--metrics-port", str(port), timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"queuectl: error: cannot serve metrics on 127.0.0.1:{port}: the address is already "
        "in use (another pool or program serves that port); pick another --metrics-port")
    assert cli_json(db_path, "worker", "list") == []


def test_headless_commands_do_not_import_prometheus_client(db_path):
    """Only `metrics` (and a pool with --metrics-port) pay for the import."""
    enqueue(db_path, "true")
    probe = ("import sys\nfrom queuectl_tui.cli import main\nimport contextlib, io\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    code = main(sys.argv[1:])\n"
             "print('prometheus_client' in sys.modules, code)")
    for args in (["status"], ["list"], ["queue", "list"], ["worker", "list"],
                 ["enqueue", "true"], ["config", "list"], ["dlq", "list"]):
        result = subprocess.run([sys.executable, "-c", probe, *args], env=cli_env(str(db_path)),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "False 0", args
    result = subprocess.run([sys.executable, "-c", probe, "metrics"], env=cli_env(str(db_path)),
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines()[-1] == "True 0"
