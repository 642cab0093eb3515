"""The Trends view (8): figures read on the slow thread while it is shown, the
span switched by [ and ], enter opens the queue's recent jobs."""

from __future__ import annotations

from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from tests.console.conftest import make_app

SIZE = (120, 36)


def cells(app) -> dict[str, tuple[str, ...]]:
    """QUEUE -> (DONE, FAILED, FAIL %, P50, P95) as shown."""
    table = app.screen.query_one("#trends-table")
    found = {}
    for row in table.ordered_rows:
        shown = [str(c) for c in table.get_row(row.key)]
        found[shown[0]] = tuple(shown[1:6])
    return found


async def test_spans_switch_by_key_and_figures_come_from_the_slow_thread(trends_db, clock):
    app = make_app(trends_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not any(name.startswith("trends-") for name in app.db.slow_results)
        await press(pilot, "8")
        await settle(pilot)
        assert app.db.slow_results["trends-1h"][0].span == "1h"
        assert "last hour" in str(app.screen.query_one("#status").render())
        assert cells(app) == {
            "all queues": ("63", "11", "15%", "749ms", "33s"),
            "hooks": ("26", "11", "30%", "487ms", "740ms"),
            "mail": ("4", "0", "0%", "42s", "49s"),
            "reports": ("33", "0", "0%", "2.1s", "3.0s"),
            "default": ("0", "0", "-", "-", "-"),  # no run ended in the last hour
            "media": ("0", "0", "-", "-", "-")}
        await press(pilot, "]")
        await settle(pilot)
        assert "last 24 hours" in str(app.screen.query_one("#status").render())
        day = cells(app)
        # Every run of the fixture ended within the day: the header's done and the
        # dead plus the one retrying job are all of them.
        summary = app.summary
        assert summary is not None
        assert day["all queues"][:2] == (str(summary.counts["completed"]),
                                         str(summary.counts["dead"] + summary.counts["failed"]))
        assert day["all queues"][:2] == ("97", "21")
        assert {"default", "reports", "hooks", "mail"} <= set(day)
        await press(pilot, "]")  # the longest span stays
        assert app.screen.span == "24h"
        await press(pilot, "[", "[")
        await settle(pilot)
        assert "last 5 minutes" in str(app.screen.query_one("#status").render())
        assert cells(app)["all queues"][:2] == ("3", "0")
        await press(pilot, "[")
        assert app.screen.span == "5m"
        await press(pilot, "j", "j", "enter")  # (all), default, hooks: its last 5 minutes
        await settle(pilot)
        assert app.current_mode == "jobs"
        assert app.screen.filter_text == "queue:hooks since:5m"


async def test_figures_are_read_again_only_while_the_view_is_shown(trends_db, clock):
    app = make_app(trends_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "8")
        await settle(pilot)
        first = app.db.slow_results["trends-1h"][1]
        clock.advance(20)  # older than the 1h span's 15 s: due again...
        await press(pilot, "1")
        for _ in range(3):
            app.request_refresh()
            await settle(pilot)
        assert app.db.slow_results["trends-1h"][1] == first  # ...but not read while away
        await press(pilot, "8")
        await settle(pilot)
        assert app.db.slow_results["trends-1h"][1] > first
