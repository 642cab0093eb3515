"""The console's screens know the app only as a `ConsoleContext` (context.py)."""

from __future__ import annotations

from queuectl_tui.console.app import ConsoleApp
from queuectl_tui.console.context import ConsoleContext
from tests.test_layout import ROOT, graph

APP_SIDE = ("queuectl_tui.console.app", "queuectl_tui.console.commands")


def test_the_app_provides_everything_the_context_names(tmp_path):
    app = ConsoleApp(str(tmp_path / "none.db"), refresh_interval=None, threaded=False)
    named = set(ConsoleContext.__annotations__) | {
        name for name in vars(ConsoleContext) if not name.startswith("_")}
    assert sorted(name for name in named if not hasattr(app, name)) == []


def test_no_screen_or_widget_imports_the_app_back():
    modules, edges = graph(ROOT)
    below = [name for name in modules
             if name.startswith(("queuectl_tui.console.screens", "queuectl_tui.console.widgets"))]
    assert below
    assert sorted(f"{name} -> {target}" for name in below for target in edges[name]
                  if target.startswith(APP_SIDE)) == []
