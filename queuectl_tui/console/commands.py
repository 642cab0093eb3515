"""The command palette (ctrl+p): every console action by name.

Each entry names the key that does the same, so the palette teaches the keys.
An action on "the selected job" runs in the list shown (Jobs or the DLQ), else
in Jobs; a view's own action switches to that view first. Quit is Textual's
own entry ("Quit the application"), listed once. A read-only console lists
none of the actions that change anything (read_only.py).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from queuectl_tui.console.read_only import action_name
from queuectl_tui.console.screens.jobs import TAB_STATES
from queuectl_tui.engine import STATE_LABELS

VIEWS = (("Jobs", "jobs", "1: every job, live"), ("Workers", "workers", "2: worker processes"),
         ("DLQ", "dlq", "3: dead jobs"), ("History", "history", "4: the event log"),
         ("Config", "config", "5: settings"), ("Queues", "queues", "6: named queues"),
         ("Schedules", "schedules", "7: recurring jobs"),
         ("Trends", "trends", "8: runs, failures and durations over time"))
STATE_TABS = (("all", "all"),  # the Jobs view's tabs, named in the console's words
              *((state, STATE_LABELS[state].lower()) for state in TAB_STATES))
ON_A_JOB = (  # (name, help, action): in the list shown (Jobs or the DLQ), else in Jobs
    ("Retry or requeue the selected job", "r: dead, done or cancelled: it runs again",
     "retry"),
    ("Delete the selected job", "d (asks first)", "delete"),
    ("Mark or unmark the selected job", "space", "mark"),
    ("Unmark all", "u", "unmark"),
    ("Retry the marked or matching jobs here", "R (asks first, saying how many)",
     "retry_bulk"),
    ("Delete the marked or matching jobs here", "D (asks first, saying how many)",
     "delete_bulk"),
    ("Enqueue a job like the selected one", "N: the form filled in from it",
     "enqueue_similar"),
    ("Copy the selected job's id", "y: to the clipboard (OSC 52)", "copy_id"),
    ("Copy the selected job's command", "Y: to the clipboard (OSC 52)", "copy_command"),
    ("Filter the list", "/: state:dead queue:mail key:c1 cmd:curl or text", "filter"),
)
IN_VIEW = (  # (name, help, view, action)
    ("Retry marked or all dead jobs", "R in the DLQ (asks first, saying how many)", "dlq",
     "retry_bulk"),
    ("Delete marked or all dead jobs", "D in the DLQ (asks first, saying how many)", "dlq",
     "delete_bulk"),
    ("Cancel the selected or marked jobs", "c in Jobs (asks first)", "jobs", "cancel_job"),
    ("Hold or release the selected or marked jobs",
     "H in Jobs: held jobs never start until released", "jobs", "hold_or_release"),
    ("Edit the selected job", "e in Jobs: its form, for a job that has not started", "jobs",
     "edit_job"),
    ("Pause or resume the selected running job", "z in Jobs: SIGSTOP / SIGCONT where it "
     "runs (asks first)", "jobs", "pause_job"),
    ("Switch the order: newest first / run order", "s in Jobs", "jobs", "sort"),
    ("Reverse the order", "S in Jobs", "jobs", "reverse"),
    ("Show or hide the detail pane", "v in Jobs", "jobs", "toggle_detail"),
    ("History of the selected job", "h in Jobs", "jobs", "history"),
    ("Go to what the selected job waits for", "a in Jobs", "jobs", "open_dependency"),
    ("Go to the jobs that wait for the selected one", "A in Jobs", "jobs",
     "open_dependents"),
    ("Start a worker", "s in Workers: keeps running after you quit", "workers", "start"),
    ("Stop the selected worker", "x in Workers, after its current job", "workers", "stop"),
    ("Stop the newest worker (scale down)", "- in Workers", "workers", "scale_down"),
    ("Stop all workers", "X in Workers (asks first)", "workers", "stop_all"),
    ("Show stopped workers", "a in Workers", "workers", "show_stopped(True)"),
    ("Hide stopped workers", "a in Workers", "workers", "show_stopped(False)"),
    ("Open the selected worker's job", "enter in Workers", "workers", "open_job"),
    ("Pause or resume the selected queue", "p in Queues", "queues", "toggle_pause"),
    ("Limit the selected queue", "l in Queues: at most N of its jobs at once", "queues",
     "limit"),
    ("Open the selected queue's jobs", "enter in Queues", "queues", "open_jobs"),
    ("Pause or resume the selected schedule", "p in Schedules", "schedules", "toggle_pause"),
    ("Run the selected schedule now", "r in Schedules: one job outside its ticks",
     "schedules", "run_now"),
    ("Open the selected schedule's jobs", "enter in Schedules", "schedules", "open_jobs"),
    ("Edit the selected config key", "e in Config", "config", "edit"),
)


def _actions(app: Any) -> list[tuple[str, str, Callable[[], Any]]]:
    """(name, help, callback) for everything the keys do, wherever focus is
    (and this console may do)."""

    def on_view(view: str, action: str) -> Callable[[], Any]:
        def run() -> None:
            app.action_view(view)
            app.call_after_refresh(lambda: app.screen.run_action(action))
        return run

    def on_job(action: str) -> Callable[[], Any]:
        def run() -> None:
            if app.current_mode not in ("jobs", "dlq"):
                app.action_view("jobs")
            app.call_after_refresh(lambda: app.screen.run_action(action))
        return run

    def state(name: str) -> Callable[[], Any]:
        def run() -> None:
            app.action_view("jobs")
            app.call_after_refresh(lambda: app.screen.show_state(name))
        return run

    found = [(f"{name} view", help_text, partial(app.action_view, mode))
             for name, mode, help_text in VIEWS]
    if not app.refuses("enqueue"):
        found.append(("Enqueue a job",
                      "n: command, queue, after, id, retries, priority, delay, timeout",
                      app.action_enqueue))
    found += [
        ("Back", "esc after a jump, backspace anywhere: the view, filter and row left",
         app.action_back),
        ("Help", "?: the keys of this view", app.action_help),
    ]
    found += [(name, help_text, on_job(action)) for name, help_text, action in ON_A_JOB
              if not app.refuses(action)]
    found += [(name, help_text, on_view(view, action))
              for name, help_text, view, action in IN_VIEW
              if not app.refuses(action_name(action))]
    found += [(f"Show {label} jobs", "state tab in Jobs ([ and ])", state(name))
              for name, label in STATE_TABS]
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
