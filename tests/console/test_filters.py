"""Filter text -> queries."""

from __future__ import annotations

import pytest

from queuectl_tui.console.filters import FilterError, parse_events, parse_jobs, with_states


def test_fields_and_free_text():
    q = parse_jobs('state:dead cmd:"sleep 5" worker:3 id:ab backup')
    assert (q.states, q.commands, q.workers, q.ids, q.text) == \
        (("dead",), ("sleep 5",), ("3",), ("ab",), ("backup",))


def test_state_words_people_use_and_lists():
    assert parse_jobs("state:running,retrying state:dlq").states == \
        ("processing", "failed", "dead")
    assert parse_jobs("STATE:Done").states == ("completed",)


def test_unknown_field_and_unclosed_quote_say_so_and_urls_stay_text():
    """Issue 26: `foo:bar` and `cmd:"x` silently became free text."""
    assert parse_jobs("http://example.com").text == ("http://example.com",)
    assert parse_jobs("text:foo:bar 12:30").text == ("foo:bar", "12:30")
    with pytest.raises(FilterError, match="unknown field 'foo' in 'foo:bar'.*text:foo:bar"):
        parse_jobs("foo:bar")
    with pytest.raises(FilterError, match="unclosed quote"):
        parse_jobs('cmd:"x')
    with pytest.raises(FilterError, match="unknown field 'jobb'"):
        parse_events("jobb:abc")
    with pytest.raises(FilterError, match="unknown state 'sleeping'"):
        parse_jobs("state:sleeping")
    with pytest.raises(FilterError, match="needs a value"):
        parse_jobs("cmd:")


def test_a_tab_narrows_and_never_widens():
    assert with_states(parse_jobs("cmd:x"), ("dead",)).states == ("dead",)
    assert with_states(parse_jobs("state:dead,pending"), ("dead",)).states == ("dead",)
    assert "dead" not in with_states(parse_jobs("state:pending"), ("dead",)).states


def test_history_filter():
    q = parse_events("job:abc to:dead worker:w1 cancelled")
    assert (q.job_ids, q.states, q.workers, q.text) == (("abc",), ("dead",), ("w1",),
                                                        ("cancelled",))


def test_since_takes_a_duration_and_keeps_the_widest_window():
    assert parse_jobs("since:1h").since == 3600
    assert parse_jobs("since:30m since:2d state:dead").since == 2 * 86400
    assert parse_jobs("backup").since is None
    assert parse_jobs("since:90").since == 90
    with pytest.raises(FilterError, match="since: invalid duration 'soon'"):
        parse_jobs("since:soon")


def test_key_is_an_exact_field_and_its_terms_are_alternatives():
    q = parse_jobs("key:c1 key:c2 key:c1 queue:api")
    assert (q.keys, q.queues, q.text) == (("c1", "c2"), ("api",), ())
    assert parse_jobs("KEY:tenant-7").keys == ("tenant-7",)
    assert parse_jobs("key:c1").has_text  # a filtered view: counted as such
    with pytest.raises(FilterError, match="needs a value"):
        parse_jobs("key:")
    with pytest.raises(FilterError, match="fields: .*key"):
        parse_jobs("kee:c1")
