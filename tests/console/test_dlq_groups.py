"""The DLQ by failure (`f`, issue 29): pictures of the groups and of the question
before a group is retried, and the keys through the real database threads,
checked in the database. The fixture's DLQ: hook-1 and hook-2 failed the same
way (curl could not resolve a host), backup-db timed out."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.screens.dlq_groups import GroupTable
from queuectl_tui.engine.signatures import group_id
from tests.console.conftest import keys_then_settle, make_app
from tests.console.test_flows import shown_ids, state_of

SIZE = (120, 36)
CURL = "exit 6: exit code <n>: curl: (<n>) Could not resolve host: example.invalid"
CURL_GROUP = group_id(CURL)


def shown_groups(app) -> list[tuple[str, int]]:
    table = app.screen.query_one("#groups", GroupTable)
    keys = [table.coordinate_to_cell_key((row, 0)).row_key.value
            for row in range(table.row_count)]
    return [(key, table.groups[key].count) for key in keys]


def selected_group(app) -> str | None:
    found = app.screen.query_one("#groups", GroupTable).selected()
    return found.group if found else None


def test_dlq_by_failure(snap_compare, queue_db, clock):
    assert snap_compare(make_app(queue_db, clock), terminal_size=SIZE,
                        run_before=keys_then_settle("3", "f"))


def test_dlq_group_retry_asks_saying_how_many(snap_compare, queue_db, clock):
    assert snap_compare(make_app(queue_db, clock), terminal_size=SIZE,
                        run_before=keys_then_settle("3", "f", "r"))


@pytest.mark.parametrize("threaded", [True, False])
async def test_r_retries_the_selected_group_after_asking(queue_db, clock, threaded):
    app = make_app(queue_db, clock, threaded=threaded)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "f")
        assert shown_groups(app) == [(CURL_GROUP, 2), (group_id("timeout: timed out after <n>s"),
                                                       1)]
        await press(pilot, "r")
        dialog = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert f"Retry the 2 dead jobs of group {CURL_GROUP}?" in dialog, dialog
        assert "Could not resolve host" in dialog
        await press(pilot, "n")  # No: nothing moves
        assert state_of("hook-1") == state_of("hook-2") == "dead"
        await press(pilot, "r", "y")
        assert state_of("hook-1") == state_of("hook-2") == "pending"
        assert state_of("backup-db") == "dead"
        assert [g for g, _ in shown_groups(app)] == [group_id("timeout: timed out after <n>s")]


async def test_d_deletes_the_selected_group_after_asking(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "f", "d")
        dialog = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert f"Delete the 2 dead jobs of group {CURL_GROUP}?" in dialog, dialog
        await press(pilot, "escape")
        assert state_of("hook-1") == "dead"
        await press(pilot, "d", "y")
        assert state_of("hook-1") is None and state_of("hook-2") is None
        assert state_of("backup-db") == "dead"


async def test_enter_lists_the_group_s_jobs_and_esc_comes_back(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "f", "j", "k")
        assert selected_group(app) == CURL_GROUP
        await press(pilot, "enter")
        assert not app.screen.grouped
        assert app.screen.filter_text == f"group:{CURL_GROUP}"
        assert shown_ids(app) == ["hook-2", "hook-1"]
        await press(pilot, "escape")
        assert app.screen.grouped and app.screen.filter_text == ""
        assert selected_group(app) == CURL_GROUP
        await press(pilot, "f")  # every dead job again
        assert not app.screen.grouped
        assert shown_ids(app) == ["backup-db", "hook-2", "hook-1"]


async def test_by_failure_the_list_keys_are_off(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "f", "space", "R", "slash")
        assert app.screen.marked == {} and app.screen is app.view  # no mark, no question
        assert not app.screen.query_one("#filter").display
        screen = app.screen
        assert not screen.check_action("log", ()) and not screen.check_action("mark", ())
        assert screen.check_action("by_failure", (False,))  # the footer says: f Every job
        assert not screen.check_action("by_failure", (True,))
        await press(pilot, "escape")  # esc by failure: back to every dead job
        assert not app.screen.grouped


async def test_a_group_filter_in_the_list(queue_db, clock):
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "3", "slash", *f"group:{CURL_GROUP[:4]}", "enter")
        assert shown_ids(app) == ["hook-2", "hook-1"]
        status = str(app.screen.query_one("#status", Static).render())
        assert "2 of 3 dead match" in status, status
        await press(pilot, "escape", "slash", *"group:xyz", "enter")
        error = str(app.screen.query_one("#filter-error", Static).render())
        assert "not a group id" in error, error
