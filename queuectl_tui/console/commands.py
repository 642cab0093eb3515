"""The command palette (ctrl+p): every console action by name."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider


def _actions(app: Any) -> list[tuple[str, str, Callable[[], Any]]]:
    """(name, help, callback) for everything the keys do, wherever focus is."""

    def on_view(view: str, action: str) -> Callable[[], Any]:
        def run() -> None:
            app.action_view(view)
            app.call_after_refresh(lambda: app.screen.run_action(action))
        return run

    def state(name: str) -> Callable[[], Any]:
        def run() -> None:
            app.action_view("jobs")
            app.call_after_refresh(lambda: app.screen.show_state(name))
        return run

    found = [
        ("Jobs view", "1: every job, live", partial(app.action_view, "jobs")),
        ("Workers view", "2: worker processes", partial(app.action_view, "workers")),
        ("DLQ view", "3: dead jobs", partial(app.action_view, "dlq")),
        ("History view", "4: the event log", partial(app.action_view, "history")),
        ("Config view", "5: settings", partial(app.action_view, "config")),
        ("Schedules view", "7: recurring jobs", partial(app.action_view, "schedules")),
        ("Enqueue a job", "n: command, id, retries, priority, delay, timeout",
         app.action_enqueue),
        ("Filter jobs", "/: state:dead cmd:curl worker:3 or text", on_view("jobs", "filter")),
        ("Retry marked or all dead jobs", "R in the DLQ (asks first)",
         on_view("dlq", "retry_bulk")),
        ("Delete marked or all dead jobs", "D in the DLQ (asks first)",
         on_view("dlq", "delete_bulk")),
        ("Start a worker", "s in Workers: keeps running after you quit",
         on_view("workers", "start")),
        ("Stop the newest worker (scale down)", "- in Workers", on_view("workers", "scale_down")),
        ("Stop all workers", "X in Workers (asks first)", on_view("workers", "stop_all")),
        ("Help", "?: every key", app.action_help),
        ("Quit", "q: workers keep running", app.exit),
    ]
    for name, label in (("pending", "pending"), ("processing", "running"),
                        ("failed", "retrying"), ("dead", "dead"), ("completed", "done"),
                        ("all", "all")):
        found.append((f"Show {label} jobs", "state tab in Jobs", state(name)))
    return found


class ConsoleCommands(Provider):
    async def discover(self) -> Hits:
        for name, help_text, callback in _actions(self.app):
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in _actions(self.app):
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
