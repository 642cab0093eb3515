"""One vocabulary for states: the console's filter reads the engine's words
(engine/states.py STATE_ALIASES) and its state tabs wear the engine's labels
(STATE_LABELS), so a word added there works everywhere at once."""

from __future__ import annotations

from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.engine import states
from tests.console.conftest import make_app
from tests.console.test_flows import shown_ids

SIZE = (140, 36)


async def test_the_filter_knows_every_word_the_engine_knows(queue_db, clock, monkeypatch):
    monkeypatch.setitem(states.STATE_ALIASES, "graveyard", states.State.DEAD)
    app = make_app(queue_db, clock, threaded=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"state:graveyard cmd:hook", "enter")
        assert not str(app.screen.query_one("#filter-error").render()).strip()
        assert shown_ids(app) == ["hook-2", "hook-1"]


async def test_the_state_tabs_wear_the_engines_labels(queue_db, clock):
    app = make_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tabs = [str(tab.label) for tab in app.screen.query("Tab")
                if (tab.id or "").startswith("state-")]
        labels = [states.STATE_LABELS[s] for s in
                  ("pending", "blocked", "held", "processing", "failed", "dead",
                   "completed", "cancelled")]
        assert [t.split()[0] for t in tabs] == ["All", *labels], tabs
