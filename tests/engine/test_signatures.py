"""A failed run's signature (engine/signatures.py): real error lines made
generic, instances of one failure alike, different failures apart, bounded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queuectl_tui.engine.signatures import MAX_LEN, generic, group_id, last_line, signature

# (a real last line of error output, what it becomes)
LINES = [
    # Python tracebacks' last lines
    ("KeyError: 'job-4f3a2b'", "KeyError: <q>"),
    ("FileNotFoundError: [Errno 2] No such file or directory: '/data/in/part-0001.csv'",
     "FileNotFoundError: [Errno <n>] No such file or directory: <q>"),
    ("ValueError: invalid literal for int() with base 10: 'abc'",
     "ValueError: invalid literal for int() with base <n>: <q>"),
    ("RuntimeError: job 6b1f0e3c-8d2a-4c1e-9f7a-2b3c4d5e6f70 failed at step 3/10",
     "RuntimeError: job <id> failed at step <n>/<n>"),
    ("ZeroDivisionError: division by zero", "ZeroDivisionError: division by zero"),
    ("requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.x.com', port=443): "
     "Max retries exceeded with url: /v1/items/123 (Caused by NewConnectionError('<urllib3."
     "connection.HTTPSConnection object at 0x7f1c2d3e4f50>: Failed to establish a new "
     "connection: [Errno 111] Connection refused'))",
     "requests.exceptions.ConnectionError: HTTPSConnectionPool(host=<q>, port=<n>): Max "
     "retries exceeded with url: <path> (Caused by NewConnectionError(<q>))"),
    # curl
    ("curl: (6) Could not resolve host: api7.example.com",
     "curl: (<n>) Could not resolve host: <id>.example.com"),
    ("curl: (22) The requested URL returned error: 503",
     "curl: (<n>) The requested URL returned error: <n>"),
    ("curl: (7) Failed to connect to 10.1.2.3 port 8080 after 2 ms: Connection refused",
     "curl: (<n>) Failed to connect to <ip> port <n> after <n> ms: Connection refused"),
    ("curl: (28) Operation timed out after 30001 milliseconds with 0 bytes received",
     "curl: (<n>) Operation timed out after <n> milliseconds with <n> bytes received"),
    # files, shells
    ("cat: /tmp/x17.txt: No such file or directory", "cat: <path>: No such file or directory"),
    ("sh: 1: frobnicate: not found", "sh: <n>: frobnicate: not found"),
    ("./run.sh: line 12: ./bin/tool: Permission denied",
     "<path>: line <n>: <path>: Permission denied"),
    ("tar: src/data/2024/01/file.bin: Cannot open: No such file or directory",
     "tar: <path>: Cannot open: No such file or directory"),
    ("error: file ~/work/x9.txt not found", "error: file <path> not found"),
    ("C:\\Users\\bob\\file.txt not found", "<path> not found"),
    # PostgreSQL
    ('ERROR:  relation "users_2024" does not exist', "ERROR: relation <q> does not exist"),
    ('psql: error: connection to server at "db1.internal" (10.0.0.5), port 5432 failed: '
     "FATAL:  password authentication failed for user \"app\"",
     "psql: error: connection to server at <q> (<ip>), port <n> failed: FATAL: password "
     "authentication failed for user <q>"),
    ("DETAIL:  Key (id)=(42) already exists.", "DETAIL: Key (id)=(<n>) already exists."),
    # memory
    ("MemoryError", "MemoryError"),
    ("Killed", "Killed"),
    ("fatal error: runtime: out of memory", "fatal error: runtime: out of memory"),
    ("terminate called after throwing an instance of 'std::bad_alloc'",
     "terminate called after throwing an instance of <q>"),
    # times, hosts, hex, ids, units
    ("2024-03-01T12:34:56.789Z ERROR worker 7 failed job 5f0c2d9e1a: upload failed",
     "<time> ERROR worker <n> failed job <hex>: upload failed"),
    ("[2024-03-01 12:34:56,123] ERROR lost connection", "[<time>] ERROR lost connection"),
    ("Mar  3 10:11:12 host1 app[1234]: segfault at 7ffd5c3b2a10 error 4",
     "<time> <id> app[<n>]: segfault at <hex> error <n>"),
    ("E1203 10:11:12.123456   12345 main.go:42] failed to sync: context deadline exceeded",
     "<id> <time> <n> main.go:<n>] failed to sync: context deadline exceeded"),
    ("timeout after 1234ms connecting to 10.0.0.17:5432",
     "timeout after <n>ms connecting to <ip>"),
    ("upload to s3://bucket/key/123 failed", "upload to <url> failed"),
    ("GET https://api.example.com/v1/users/42?token=abc returned 500",
     "GET <url> returned <n>"),
    ("ssh: connect to host fe80::1 port 22: Connection timed out",
     "ssh: connect to host <ip> port <n>: Connection timed out"),
    ("Permission denied (publickey). deploy@host.example.com",
     "Permission denied (publickey). <email>"),
    ("build failed in 3.2s (exit status 0x1f)", "build failed in <n>s (exit status <hex>)"),
    ("failed ids 1, 2, 3, 4", "failed ids <n>"),
    ("can't open 'x' because it's locked by user_123 (pid 4567)",
     "can't open <q> because it's locked by user_<n> (pid <n>)"),
    # structured logs: the message, not the keys
    ('{"level":"error","ts":"2024-03-01T12:00:00Z","msg":"connection to db-3 refused after '
     '3 tries"}', "connection to db-<n> refused after <n> tries"),
    # terminal decorations and progress bars
    ("\x1b[31merror\x1b[0m: disk full on /dev/sda1", "error: disk full on <path>"),
]


@pytest.mark.parametrize("line, expected", LINES)
def test_real_error_lines_are_made_generic(line, expected):
    assert generic(line) == expected


@pytest.mark.parametrize("first, second", [
    ("error: file /tmp/x1.txt not found", "error: file /var/data/y2000.csv not found"),
    ("KeyError: 'job-1'", "KeyError: 'user-99-abc'"),
    ("timeout after 12ms connecting to 10.0.0.1", "timeout after 9000ms connecting to 10.9.8.7"),
    ("job 5f0c2d9e1a failed", "job 00ffa3b2c1 failed"),
    ("at 2024-01-02T03:04:05Z: lost", "at 2025-12-31 23:59:59: lost"),
])
def test_instances_of_one_failure_share_a_signature(first, second):
    assert signature(2, "exit", f"noise\n{first}\n", None) == \
        signature(2, "exit", f"other noise\n{second}\n\n", None)


@pytest.mark.parametrize("one, other", [
    ((2, "exit", "error: file /tmp/x not found"), (3, "exit", "error: file /tmp/x not found")),
    ((2, "exit", "error: file /tmp/x not found"), (2, "exit", "error: disk full")),
    ((-9, "exit", ""), (-15, "exit", "")),
    ((None, "timeout", ""), (None, "oom", "")),
])
def test_different_failures_have_different_signatures(one, other):
    assert signature(*one, None) != signature(*other, None)


def test_how_the_run_ended_comes_first():
    tail = "starting\nerror: file /tmp/x17.txt not found\n"
    assert signature(2, "exit", tail, "exit code 2: ...") == "exit 2: error: file <path> not found"
    assert signature(1, "exit", "", "exit code 1") == "exit 1"
    assert signature(-9, "exit", "", "killed by SIGKILL") == "SIGKILL"
    assert signature(-11, "exit", "Segmentation fault\n", "killed by SIGSEGV") == \
        "SIGSEGV: Segmentation fault"
    assert signature(127, "exit", "sh: 1: nope: not found\n", "exit code 127 (command not found)") \
        == "exit 127: sh: <n>: nope: not found"
    # A timeout, an OOM and a rescue are described by the engine's words, not by
    # what the job printed last (a progress line is not why it failed).
    assert signature(-15, "timeout", "step 3 of 9\n", "timed out after 30 s") == \
        "timeout: timed out after <n> s"
    assert signature(-9, "oom", "allocating\n", "out of memory: limit 64M (cgroup v2)") == \
        "oom: out of memory: limit <n>M (cgroup <id>)"
    assert signature(None, "rescued", None, "worker vm1-1234-ab died") == \
        "rescued: worker <id> died"
    assert signature(None, "rescued", None, "worker w9 lost; lease expired") == \
        "rescued: worker <id> lost; lease expired"
    # It never ran: the reason is the error.
    assert signature(None, "exit", "", "cannot run in /srv/x1: No such file or directory") == \
        "error: cannot run in <path>: No such file or directory"
    # A caller that does not know how it ended: the exit and the error.
    assert signature(None, None, None, "snoozed 10 times") == "error: snoozed <n> times"


def test_the_last_line_is_the_last_one_a_terminal_shows():
    assert last_line("a\nb\n\n  \n") == "b"
    assert last_line("loading 10%\rloading 100%\rerror: disk full\n") == "error: disk full"
    assert last_line("") == "" and last_line(None) == ""


def test_a_signature_is_bounded():
    sig = signature(2, "exit", "word " * 2000, None)
    assert len(sig) == MAX_LEN and sig.endswith("…")


def test_a_group_id_is_short_stable_hex():
    assert group_id("exit 2: error: file <path> not found") == "f9a52470"  # never changes
    assert group_id(None) == group_id("") and len(group_id(None)) == 8


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-64, max_value=255) | st.none(),
       st.sampled_from(["exit", "timeout", "oom", "rescued", None]),
       st.text(max_size=600), st.text(max_size=200) | st.none())
def test_any_output_gives_a_bounded_deterministic_signature(code, ended, tail, error):
    sig = signature(code, ended, tail, error)
    assert 0 < len(sig) <= MAX_LEN
    assert sig == signature(code, ended, tail, error)
    assert "\n" not in sig and "\x1b" not in sig
