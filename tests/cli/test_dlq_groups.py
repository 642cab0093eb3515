"""The DLQ's failure groups through real processes (issue 29), on SQLite and
PostgreSQL: a real pool runs 300 jobs that fail three ways, each with its own
numbers, paths, addresses and ids in its message; `dlq groups` makes them 3
groups of 100, `dlq retry --group` revives exactly its group, and the revived
jobs, dying again, come back to the same group."""

from __future__ import annotations

import json

from tests.helpers import cli_json, run_cli, wait_for

MISSING = "exit 2: error: file <path> not found"
TIMEOUT = "exit 7: timeout after <n>ms connecting to <ip>"
KEYERROR = "exit 1: KeyError: <q>"


def three_ways(n: int) -> str:
    """JSON Lines: n jobs failing each way, the messages differing from job to job."""
    lines = []
    for i in range(n):
        lines.append({"id": f"miss-{i}", "max_retries": 0,
                      "command": f'echo "error: file /tmp/in{i}/x{i * 7}.txt not found" >&2; '
                                 "exit 2"})
        lines.append({"id": f"slow-{i}", "max_retries": 0,
                      "command": f'echo "timeout after {i * 13 + 5}ms connecting to '
                                 f'10.0.{i % 7}.{i}:{5000 + i}" >&2; exit 7'})
        lines.append({"id": f"key-{i}", "max_retries": 0, "queue": "etl",
                      "command": "printf 'Traceback (most recent call last):\\n  File "
                                 f'"/srv/app/job{i}.py", line {i + 1}, in run\\n'
                                 f"KeyError: \"order-{i}-{i:04x}ab\"\\n' >&2; exit 1"})
    return "".join(json.dumps(line) + "\n" for line in lines)


def dead_count(db) -> int:
    return cli_json(db, "status")["counts"]["dead"]


def test_300_failures_three_ways_are_3_groups_and_a_retry_takes_one(db, pools):
    added = run_cli(db, "enqueue", "--file", "-", "--json", input=three_ways(100))
    assert added.returncode == 0, added.stderr
    pool = pools(2)
    wait_for(lambda: dead_count(db) == 300, timeout=180, interval=0.5,
             message="300 jobs to die")
    groups = cli_json(db, "dlq", "groups")
    assert {g["signature"]: g["count"] for g in groups} == \
        {MISSING: 100, TIMEOUT: 100, KEYERROR: 100}
    assert len(groups) == 3
    by_sig = {g["signature"]: g for g in groups}
    assert by_sig[KEYERROR]["queues"] == ["etl"] and by_sig[MISSING]["queues"] == ["default"]
    assert by_sig[TIMEOUT]["sample_id"].startswith("slow-")
    assert all(g["first_seen"] <= g["last_seen"] for g in groups)
    text = run_cli(db, "dlq", "groups")
    assert text.returncode == 0 and TIMEOUT in text.stdout and "100" in text.stdout

    run_cli(db, "worker", "stop", "--wait")
    assert pool.wait(60) == 0
    slow = by_sig[TIMEOUT]["group"]
    listed = cli_json(db, "dlq", "list", "--group", slow)
    assert sorted(j["id"] for j in listed) == sorted(f"slow-{i}" for i in range(100))
    assert {j["failure_group"] for j in listed} == {slow}
    retried = run_cli(db, "dlq", "retry", "--group", slow[:4], "--json")
    assert retried.returncode == 0, retried.stderr
    assert sorted(json.loads(retried.stdout)["retried"]) == sorted(f"slow-{i}" for i in range(100))
    jobs = {j["id"]: j for j in cli_json(db, "list")}
    assert {jobs[f"slow-{i}"]["state"] for i in range(100)} == {"pending"}
    assert {j["state"] for job_id, j in jobs.items() if not job_id.startswith("slow-")} == \
        {"dead"}
    assert {g["signature"]: g["count"] for g in cli_json(db, "dlq", "groups")} == \
        {MISSING: 100, KEYERROR: 100}
    unknown = run_cli(db, "dlq", "retry", "--group", slow)
    assert unknown.returncode == 3 and len(unknown.stderr.strip().splitlines()) == 1

    # They fail again the same way: back in the same group, by the same id.
    pools(2)
    wait_for(lambda: dead_count(db) == 300, timeout=180, interval=0.5,
             message="the retried jobs to die again")
    again = {g["group"]: g["count"] for g in cli_json(db, "dlq", "groups")}
    assert again == {g["group"]: 100 for g in groups}

    # And a group goes at once: its dead jobs only.
    refused = run_cli(db, "dlq", "delete", "--group", by_sig[KEYERROR]["group"])
    assert refused.returncode == 2 and "--yes" in refused.stderr  # no terminal to ask at
    deleted = cli_json(db, "dlq", "delete", "--group", by_sig[KEYERROR]["group"], "--yes")
    assert sorted(deleted["deleted"]) == sorted(f"key-{i}" for i in range(100))
    assert {g["signature"] for g in cli_json(db, "dlq", "groups")} == {MISSING, TIMEOUT}
    assert dead_count(db) == 200


def test_group_options_refuse_bad_input_and_change_nothing(db):
    added = run_cli(db, "enqueue", "--file", "-", input=three_ways(1))
    assert added.returncode == 0, added.stderr
    for args, code, says in [
            (("dlq", "retry", "--group", "xyz"), 2, "not a group id"),
            (("dlq", "retry", "--group", "abc", "key-0"), 2, "one of them"),
            (("dlq", "retry", "--group", "abc", "--all"), 2, "one of them"),
            (("dlq", "retry", "--group", "abcd"), 3, "no DLQ group"),
            (("dlq", "list", "--group", "abcd"), 3, "no DLQ group"),
            (("dlq", "delete", "--group", "abcd", "--yes"), 3, "no DLQ group"),
            (("dlq", "delete"), 2, "--group"),
            (("dlq", "groups", "--queue", "nope"), 3, "no queue named")]:
        result = run_cli(db, *args)
        assert result.returncode == code, (args, result.stderr)
        assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1, args
        assert result.stdout == ""
    assert cli_json(db, "dlq", "groups") == []
    assert run_cli(db, "dlq", "groups").stderr.strip() == "the DLQ is empty"
    assert cli_json(db, "status")["counts"]["pending"] == 3
