"""Issue 28, a hand on every job: `hold`, `release`, `edit` and `enqueue --hold`
as a contract: text, JSON only on stdout with --json, one-line errors, exit
codes (2 usage, 3 not found, 4 conflict), all or nothing."""

from __future__ import annotations

import json

from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from tests.helpers import cli_json, run_cli


def enqueue(db, *args: str) -> str:
    result = run_cli(db, "enqueue", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


def test_hold_and_release_say_what_happened_to_each_job(db_path, tmp_path):
    a = enqueue(db_path, "true")
    b = enqueue(db_path, "--hold", "true")
    result = run_cli(db_path, "hold", a, b)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{a} held", f"{b} already held"]
    assert [j["id"] for j in cli_json(db_path, "list", "--state", "stashed")] == [a, b]
    assert cli_json(db_path, "status")["counts"]["held"] == 2
    released = run_cli(db_path, "release", a, b, "--json")
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout) == {"results": [
        {"id": a, "result": "pending", "why": None}, {"id": b, "result": "pending", "why": None}]}
    assert "no worker is running" in released.stderr  # for people, never on stdout


def test_a_mix_of_ids_changes_nothing_and_says_why(db_path):
    a = enqueue(db_path, "true")
    missing = run_cli(db_path, "hold", a, "nope", "--json")
    assert missing.returncode == 3 and missing.stdout == ""
    assert missing.stderr.strip() == "queuectl: error: no job with id 'nope'"
    opened = open_database(str(db_path))
    try:
        running = Queue(opened).claim("w", 60)
    finally:
        opened.close()
    b = enqueue(db_path, "true")
    refused = run_cli(db_path, "hold", b, running.id)
    assert refused.returncode == 4
    assert f"`queuectl pause {running.id}`" in refused.stderr
    assert cli_json(db_path, "show", b)["state"] == "pending"  # all or nothing
    not_held = run_cli(db_path, "release", b)
    assert not_held.returncode == 4 and "not held; nothing was released" in not_held.stderr
    busy = run_cli(db_path, "edit", running.id, "--priority", "3")
    assert busy.returncode == 4 and "processing" in busy.stderr


def test_edit_prints_the_job_after_and_refuses_nothing_to_change(db_path, tmp_path):
    job = enqueue(db_path, "--env", "A=1", "--priority", "1", "echo a")
    result = run_cli(db_path, "edit", job, "--command", "echo b", "--priority", "5",
                     "--env", "B=2", "--unset-env", "A", "--timeout", "1m", "--max-retries",
                     "0", "--queue", "mail", "--cwd", str(tmp_path), "--delay", "1h",
                     "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["command"], shown["priority"], shown["env"], shown["timeout"],
            shown["max_retries"], shown["queue"], shown["cwd"]) == \
        ("echo b", 5, {"B": "2"}, 60.0, 0, "mail", str(tmp_path))
    assert "mail" in [q["name"] for q in cli_json(db_path, "queue", "list")]
    note = json.loads(run_cli(db_path, "history", "--job", job, "--json").stdout
                      .splitlines()[0])
    assert note["from"] == note["to"] == "pending"
    assert note["note"].startswith("edited: command 'echo a' -> 'echo b'; priority 1 -> 5")
    for args, code, words in (((), 2, "give at least one of"),
                              (("--priority", "5"), 2, "already has these values"),
                              (("--run-at", "2030-01-01T00:00:00Z", "--delay", "1m"), 2,
                               "run_at or delay"),
                              (("--env", "NOEQUALS"), 2, "KEY=VALUE"),
                              (("--priority", "9999999"), 2, "priority must be between")):
        refused = run_cli(db_path, "edit", job, *args, "--json")
        assert refused.returncode == code and refused.stdout == "", (args, refused.stderr)
        assert words in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert run_cli(db_path, "edit", "nope", "--priority", "1").returncode == 3


def test_enqueue_hold_from_a_json_object_and_a_file(db_path, tmp_path):
    held = json.loads(run_cli(db_path, "enqueue", '{"command": "true", "hold": true}',
                              "--json").stdout)
    assert held["state"] == "held"
    lines = tmp_path / "jobs.jsonl"
    lines.write_text('{"command": "true"}\n{"command": "true", "hold": true}\n')
    plain = cli_json(db_path, "enqueue", "--file", str(lines))
    all_held = cli_json(db_path, "enqueue", "--file", str(lines), "--hold")
    states = {j["id"]: j["state"] for j in cli_json(db_path, "list")}
    assert [states[i] for i in plain["ids"]] == ["pending", "held"]
    assert [states[i] for i in all_held["ids"]] == ["held", "held"]
    text = run_cli(db_path, "enqueue", "--hold", "true")
    assert text.stdout.endswith("held: it runs once released\n")
    assert "no worker" not in text.stderr  # nothing to run yet: no nagging
