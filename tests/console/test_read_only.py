"""A read-only console (issue 31): no key, palette entry or dialog changes anything.

The database is dumped whole before and after pressing every key that would
write, in every view; the footer and the palette must not offer them; and
every key of the console must be classified (a new key that writes has to be
added to `console/read_only.py`'s WRITES, one that reads to READS below).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
import sqlite3
from pathlib import Path

import pytest
from textual.binding import Binding

import queuectl_tui.console as console_package
from queuectl_tui.clock import Ids
from queuectl_tui.console import commands
from queuectl_tui.console.app import ConsoleApp
from queuectl_tui.console.commands import _actions
from queuectl_tui.console.pilot import press_and_settle, settle
from queuectl_tui.console.read_only import (WRITES, ReadOnlyRefused, action_name,
                                            from_environment)
from queuectl_tui.errors import UsageError

SIZE = (120, 36)
VIEWS = ("1", "2", "3", "4", "5", "6", "7", "8")
# Every action a console key runs that changes nothing in the queue.
READS = frozenset({
    "view", "back", "help", "quit", "give_up", "reopen", "back_here", "state_tab", "sort",
    "reverse", "toggle_detail", "history", "open_dependency", "open_dependents", "cursor",
    "cursor_to", "open_jobs", "filter", "clear_filter", "answer", "toggle_focus", "mark",
    "unmark", "log", "copy_id", "copy_command", "cancel", "select", "show_stopped",
    "open_job", "span", "close", "scroll", "page", "leave", "follow", "wrap", "search",
    "find", "top", "end", "run", "pager", "scroll_down", "scroll_up", "scroll_home",
    "scroll_end", "move", "first", "last", "choose", "scroll_left", "scroll_right",
    "page_down", "page_up", "toggle_actions",
})


def read_only_app(db: str, clock, *, threaded: bool = False) -> ConsoleApp:
    return ConsoleApp(db, clock=clock, ids=Ids(random.Random(99)), refresh_interval=None,
                      threaded=threaded, steady=True, read_only=True)


# Any reader of the header counts stores them for the next (`queuectl status` too):
# a cache of the job table's counts, not a change to the queue (engine/counts.py).
COUNT_CACHE = 'INSERT INTO "meta" VALUES(\'counts.baseline\','


def dump(path: str) -> list[str]:
    """Every row of every table, and the job log files: what "nothing changed" means."""
    with sqlite3.connect(path) as db:
        rows = [row for row in db.iterdump() if not row.startswith(COUNT_CACHE)]
    logs = Path(path + ".logs")
    files = sorted(str(p.relative_to(logs)) for p in logs.rglob("*")) if logs.exists() else []
    return rows + files


def console_classes() -> list[type]:
    """Every class of the console package that declares key bindings of its own."""
    found = []
    for info in pkgutil.walk_packages(console_package.__path__, "queuectl_tui.console."):
        module = importlib.import_module(info.name)
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if cls.__module__ == module.__name__ and "BINDINGS" in cls.__dict__]
    return found


def test_every_key_of_the_console_is_known_to_write_or_to_read():
    unknown = {}
    for cls in console_classes():
        for binding in cls.__dict__["BINDINGS"]:
            action = binding.action if isinstance(binding, Binding) else binding[1]
            name = action_name(action)
            if name not in WRITES and name not in READS:
                unknown[f"{cls.__module__}.{cls.__name__}"] = name
    for entry in (*commands.ON_A_JOB, *commands.IN_VIEW):
        name = action_name(entry[-1])
        if name not in WRITES and name not in READS:
            unknown["the command palette"] = name
    assert not unknown, ("add each to console/read_only.py WRITES if it changes anything, "
                         f"else to READS in this test: {unknown}")
    assert not WRITES.keys() & READS


def test_the_setting_in_the_environment():
    assert from_environment({}) is False
    assert from_environment({"QUEUECTL_READ_ONLY": ""}) is False
    for word in ("1", "true", "YES", "on"):
        assert from_environment({"QUEUECTL_READ_ONLY": word}) is True
    for word in ("0", "false", "no", "off"):
        assert from_environment({"QUEUECTL_READ_ONLY": word}) is False
    with pytest.raises(UsageError, match="must be 1 or 0"):
        from_environment({"QUEUECTL_READ_ONLY": "sure"})


def shown_actions(app: ConsoleApp) -> set[str]:
    return {action_name(b.binding.action) for b in app.screen.active_bindings.values()}


async def test_no_key_changes_anything(queue_db, clock):
    """Every writing key of every view, each followed by `y` (a question's yes)
    and escape: the database is the same to the byte, each key is refused
    with a notice, and the footers offer none of them."""
    before = dump(queue_db)
    app = read_only_app(queue_db, clock)
    said: list[str] = []
    notify = app.notify
    app.notify = lambda message, **kw: (said.append(str(message)), notify(message, **kw))[1]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for view in VIEWS:
            await press_and_settle(pilot, view)
            assert not shown_actions(app) & WRITES.keys(), view
            keys = {key: binding.action
                    for cls in type(app.screen).__mro__ + (ConsoleApp,)
                    for binding in cls.__dict__.get("BINDINGS", ())
                    if isinstance(binding, Binding) and action_name(binding.action) in WRITES
                    for key in binding.key.split(",")}
            for key, action in keys.items():
                said.clear()
                await press_and_settle(pilot, view, key, "y", "escape")
                assert any("read-only console" in s for s in said), (view, key, action)
        assert app.screen_stack[-1] is app.screen and len(app.screen_stack) == 1
    assert dump(queue_db) == before


async def test_the_palette_lists_no_write_and_a_reached_one_is_refused(queue_db, clock):
    before = dump(queue_db)
    app = read_only_app(queue_db, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        names = [name for name, _, _ in _actions(app)]
        assert "Jobs view" in names and "Help" in names
        assert not [n for n in names if n.startswith(("Retry", "Delete", "Enqueue", "Stop",
                                                      "Start", "Cancel", "Pause", "Limit",
                                                      "Run the", "Edit"))]
        # Reached anyway (a stale palette, a future entry): refused at the action...
        await press_and_settle(pilot, "3")
        assert await app.run_action("retry", app.screen) is True
        await settle(pilot)
        # ...and at the database, whatever the write.
        with pytest.raises(ReadOnlyRefused, match="read-only console"):
            await app.db.write(lambda queue: queue.retry(["backup-db"]))
    assert dump(queue_db) == before


async def test_the_same_console_writes_when_not_read_only(queue_db, clock):
    """The gate is the setting, not the keys: `r` in the DLQ retries normally."""
    app = ConsoleApp(queue_db, clock=clock, ids=Ids(random.Random(99)), refresh_interval=None,
                     threaded=False, steady=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press_and_settle(pilot, "3")
        assert "retry" in shown_actions(app)
        await press_and_settle(pilot, "r")
    with sqlite3.connect(queue_db) as db:
        assert db.execute("SELECT state FROM job WHERE id = 'backup-db'").fetchone() == \
            ("pending",)


def test_read_only_jobs_view(snap_compare, queue_db, clock):
    """READ-ONLY in the header; no Retry, Delete, Cancel or New job in the footer."""
    assert snap_compare(read_only_app(queue_db, clock), terminal_size=SIZE,
                        run_before=lambda pilot: settle(pilot))


def test_read_only_dlq_view(snap_compare, queue_db, clock):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await press_and_settle(pilot, "3")
    assert snap_compare(read_only_app(queue_db, clock), terminal_size=SIZE,
                        run_before=run_before)


def test_read_only_narrow_header(snap_compare, queue_db, clock):
    assert snap_compare(read_only_app(queue_db, clock), terminal_size=(80, 24),
                        run_before=lambda pilot: settle(pilot))


def test_tui_read_only_is_an_option():
    from queuectl_tui.cli.commands import build_parser
    args = build_parser("tui").parse_args(["tui", "--read-only"])
    assert args.read_only is True
