"""`queuectl progress`, `queuectl result`, `enqueue --progress-regex` and
`queue progress` as a contract: what they refuse (exit 2, nothing changed),
what they say outside a job, and `--json` carrying only JSON."""

from __future__ import annotations

import json

from tests.helpers import cli_json, run_cli


def test_progress_outside_a_job_says_how_to_name_one(tmp_path):
    db = tmp_path / "q.db"
    assert run_cli(db, "enqueue", "--id", "j", "true").returncode == 0
    bare = run_cli(db, "progress", "40")
    assert bare.returncode == 2 and bare.stdout == ""
    assert bare.stderr.startswith("queuectl: error: not inside a job (no $QUEUECTL_JOB_ID")
    assert "name a running job with --job ID" in bare.stderr
    waiting = run_cli(db, "progress", "40", "--job", "j")
    assert waiting.returncode == 4 and "j is pending, not running" in waiting.stderr
    assert run_cli(db, "progress", "40", "--job", "nope").returncode == 3
    assert run_cli(tmp_path / "none.db", "progress", "40", "--job", "j").returncode == 5


def test_progress_refuses_what_makes_no_sense_before_opening_anything(tmp_path):
    db = tmp_path / "q.db"
    for args, says in ((["140"], "a percentage is 0 to 100"),
                       (["3/0"], "the total must be above 0"),
                       (["x"], "plain digits"),
                       (["10", "--message", "a" * 201], "the limit is 200"),
                       (["10", "--message", "two\nlines"], "control characters")):
        done = run_cli(db, "progress", *args, "--job", "j")
        assert done.returncode == 2, (args, done.stderr)
        assert says in done.stderr and done.stderr.count("\n") == 1
    assert not db.exists()


def test_result_words_and_limits(tmp_path):
    db = tmp_path / "q.db"
    assert run_cli(db, "enqueue", "--id", "j", "true").returncode == 0
    for args, code, says in ((["set"], 2, "give ID, set JSON|-, or --deps"),
                             (["a", "b"], 2, "give ID"),
                             (["--deps", "j"], 2, "--deps takes no other words"),
                             (["j", "--job", "k"], 2, "--job goes with set or --deps"),
                             (["--deps"], 2, "not inside a job"),
                             (["set", "{", "--job", "j"], 2, "not valid JSON"),
                             (["set", "1", "--job", "j"], 4, "is pending, not running"),
                             (["j"], 8, "has no result yet"),
                             (["nope"], 3, "no job with id 'nope'")):
        done = run_cli(db, "result", *args)
        assert (done.returncode, done.stdout) == (code, ""), (args, done.stderr)
        assert says in done.stderr, (args, done.stderr)
    big = run_cli(db, "result", "set", "-", "--job", "j", input="[" + "1," * 600_000 + "1]")
    assert big.returncode == 2 and "more than 1,048,576 bytes" in big.stderr
    assert json.loads(run_cli(db, "result", "--deps", "--job", "j").stdout) == {}


def test_a_progress_pattern_is_checked_where_it_is_given(tmp_path):
    db = tmp_path / "q.db"
    bad = run_cli(db, "enqueue", "--progress-regex", r"\d+%", "true")
    assert bad.returncode == 2 and "progress_regex has 0 groups" in bad.stderr
    assert not db.exists()  # refused before the database was opened
    job = cli_json(db, "enqueue", "--progress-regex", r"(\d+)/(\d+)", "true")
    assert job["progress_regex"] == r"(\d+)/(\d+)" and job["progress"] is None
    listed = cli_json(db, "list")
    assert listed[0]["progress"] is None and listed[0]["progress_regex"] == r"(\d+)/(\d+)"
    wrong = run_cli(db, "queue", "progress", "fetch", "(")
    assert wrong.returncode == 2 and "does not compile" in wrong.stderr
    assert cli_json(db, "queue", "progress", "fetch", r"(\d+)%")["progress_regex"] == r"(\d+)%"
    assert cli_json(db, "queue", "progress", "fetch", "none")["progress_regex"] is None
    line = tmp_path / "jobs.jsonl"
    line.write_text(json.dumps({"command": "true", "progress_regex": "(a)(b)(c)"}) + "\n")
    refused = run_cli(db, "enqueue", "--file", str(line))
    assert refused.returncode == 2 and "line 1: progress_regex has 3 groups" in refused.stderr
    assert len(cli_json(db, "list")) == 1
