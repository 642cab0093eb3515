"""Fuzzed input: every payload, id, config value and command is either stored and
read back unchanged, or refused with a clear error that changes nothing."""

from __future__ import annotations

import json
import random
import shlex
import tempfile

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from queuectl_tui.clock import ID_ALPHABET, FakeClock, Ids
from queuectl_tui.engine import config
from queuectl_tui.engine.jobspec import check_id, from_mapping, parse_json
from queuectl_tui.engine.storage.models import Event, Job, Setting
from queuectl_tui.engine.storage.opening import open_database
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.reads import job_dict
from queuectl_tui.errors import Conflict, QueuectlError, UsageError
from queuectl_tui.workers.worker import Worker

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _fuzz_queue():
    folder = tempfile.mkdtemp(prefix="queuectl-fuzz-")
    opened = open_database(f"{folder}/fuzz.db")
    return opened, Queue(opened, clock=FakeClock(), ids=Ids(random.Random(3)), host="fuzz")


@pytest.fixture
def fq():
    """One SQLite queue for all examples of a test (examples are independent).
    Fuzzed commands are stored here but never run: no worker touches it."""
    opened, queue = _fuzz_queue()
    yield queue
    opened.close()


@pytest.fixture
def run_queue():
    """A queue of its own for the test that runs commands: only its jobs run."""
    opened, queue = _fuzz_queue()
    yield queue
    opened.close()


def fingerprint() -> tuple:
    return (Job.select().count(), Event.select().count(),
            sorted((s.key, s.value) for s in Setting.select()))


weird_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=300)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=False), weird_text)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)
field_values = {
    "id": st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,40}", fullmatch=True),
                    json_values),
    "command": st.one_of(weird_text, st.text(min_size=1, max_size=50).map(lambda t: t * 3000),
                         json_values),
    "max_retries": st.one_of(st.integers(-5, 1100), json_values),
    "priority": st.one_of(st.integers(-2_000_000, 2_000_000), json_values),
    "run_at": st.one_of(st.floats(0, 4e9), st.just("2031-05-06T07:08:09Z"), json_values),
    "delay": st.one_of(st.floats(0, 1e6), json_values),
    "timeout": st.one_of(st.floats(0, 1e6), json_values),
    "bogus": json_values,
}
payloads = st.one_of(
    st.fixed_dictionaries({}, optional=field_values),
    json_values,
)


@FUZZ
@given(payload=payloads)
def test_enqueue_payload_is_stored_exactly_or_refused_cleanly(fq, payload):
    before = fingerprint()
    try:
        spec = from_mapping(parse_json(json.dumps(payload)))
        job = fq.enqueue(spec)
    except (UsageError, Conflict) as exc:  # Conflict: an id an earlier example stored
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        assert fingerprint() == before
        return
    stored = job_dict(fq.get(job["id"]))
    assert stored["command"] == payload["command"]
    if payload.get("id") is not None:
        assert stored["id"] == payload["id"]
    if payload.get("max_retries") is not None:
        assert stored["max_retries"] == payload["max_retries"]
    if payload.get("priority") is not None:
        assert stored["priority"] == payload["priority"]
    assert fingerprint()[0] == before[0] + 1


@FUZZ
@given(text=weird_text)
def test_ids_round_trip_or_are_refused(fq, text):
    try:
        check_id(text)
    except UsageError:
        with pytest.raises(UsageError):
            fq.get(text)  # refused before any query: never reaches SQL as text
        return
    assume(Job.select().where(Job.id == text).count() == 0)
    fq.enqueue(from_mapping({"id": text, "command": "true"}))
    assert fq.get(text).id == text
    assert [e["job_id"] for e in fq.history(text)] == [text]


@FUZZ
@given(key=st.sampled_from(sorted(config.KEYS)) | st.text(max_size=20),
       value=st.one_of(st.text(max_size=20), st.integers(-10**6, 10**6).map(str),
                       st.floats(allow_nan=True, allow_infinity=True).map(str)))
def test_config_values_are_stored_validated_or_refused(fq, key, value):
    before = fingerprint()
    try:
        stored = fq.config_set(key, value)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
        assert fingerprint() == before
        return
    assert fq.config_get(key) == stored == config.validate(key, stored)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_characters="\x00",
                                           blacklist_categories=("Cs",)), max_size=200))
def test_a_command_runs_exactly_as_stored(run_queue, text):
    """Whatever the text (quotes, $, ;, backticks, unicode), the shell gets it verbatim."""
    command = "printf %s " + shlex.quote(text)
    job = run_queue.enqueue(from_mapping({"command": command}))
    assert run_queue.get(job["id"]).command == command
    assert Worker(run_queue, "fuzz-worker").run(until_idle=True) == 1
    done = run_queue.get(job["id"])
    assert done.state == "completed", done.last_error
    assert done.stdout_tail == text


@pytest.mark.parametrize("state", ["'; DROP TABLE job; --", "pending' OR '1'='1", "pending;",
                                   ""])
def test_hostile_state_filters_are_refused(fq, state):
    before = fingerprint()
    with pytest.raises(QueuectlError):
        list(fq.jobs(state=state))
    assert fq.db.table_exists("job") and fingerprint() == before


def test_state_words_are_read_as_the_console_reads_them(fq):
    """Issue 25: a state's case and the console's words (`Running`) name the state."""
    assert list(fq.jobs(state="PENDING")) == list(fq.jobs(state="pending"))
    assert list(fq.jobs(state=["Running", "done"])) == list(fq.jobs(state=["processing",
                                                                           "completed"]))


def _reference(text: str):
    """What parse_json must agree with: the slow, exact parser."""
    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise UsageError("repeated key")
        return dict(items)
    return json.loads(text, object_pairs_hook=pairs,
                      parse_constant=lambda name: (_ for _ in ()).throw(UsageError(name)))


_keys = st.sampled_from(["command", "id", "a", "a:b", 'x":'])
_values = st.sampled_from(['"true"', '"a:b"', '"\\":"', "1", "[1, 2]", '{"a": 1, "a": 2}',
                           '{"a": 1}', "null", "NaN"])
_spaces = st.sampled_from(["", " ", "\t", "  "])


@FUZZ
@given(members=st.lists(st.tuples(_keys, _spaces, _spaces, _values), max_size=4),
       lead=_spaces, tail=st.sampled_from(["", " ", "\t", " x", ",", "}"]))
def test_the_fast_json_path_agrees_with_the_exact_parser(members, lead, tail):
    """The fast paths (raw_decode, counting colons) never let a repeated key,
    a constant or trailing garbage through, and never refuse a good line."""
    text = lead + "{" + ", ".join(f'{json.dumps(k)}{s1}:{s2}{v}'
                                  for k, s1, s2, v in members) + "}" + tail
    try:
        expected = _reference(text)
    except (UsageError, ValueError):
        with pytest.raises(UsageError):
            parse_json(text)
        return
    assert parse_json(text) == expected


def test_generated_ids_are_short_distinct_sorted_and_use_every_character():
    ids = Ids().many(20_000)
    assert len(set(ids)) == len(ids) and {len(i) for i in ids} == {10}
    used = set("".join(ids))
    assert used == set(ID_ALPHABET), used
    assert ids == sorted(ids)  # a bulk enqueue's rows meet job's indexes in key order
    assert len({i[0] for i in ids}) == len(ID_ALPHABET)  # sorted, not clustered
