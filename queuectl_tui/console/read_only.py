"""A console that looks but does not touch (`tui --read-only`, `web --read-only`,
`QUEUECTL_READ_ONLY=1`).

Every console action that changes anything is named once, in `WRITES`; the
rest of the console asks `refuses(action)`. Three gates use that one table:

- `check_action` (the app's and every view's, see screens/base.py) returns
  False for them, which is how Textual hides a key from the footer and stops it;
- the app's `run_action` (`ReadOnlyGate`) refuses them with a notice before
  Textual looks for a binding's handler, so a key, a click on the footer or
  the command palette all meet the same refusal, and the palette does not
  list them (commands.py);
- the database's write thread refuses any write at all (database.py), so an
  action missing from the table still changes nothing: it fails with the
  same words instead.

tests/console/test_read_only.py fails when a key of the console names an
action this table does not classify, so a new key has to be placed here or
in that test's list of actions that only read.

The setting is the viewer's, not the queue's: it is an option and an
environment variable (for a deployment), not a `config` key in the database,
which anyone allowed to write could turn off for everyone.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping

from queuectl_tui.errors import QueuectlError, UsageError

if TYPE_CHECKING:
    from textual.dom import DOMNode

ENV = "QUEUECTL_READ_ONLY"

# action name -> what it does, for the refusal ("read-only console: <what> is off").
WRITES: dict[str, str] = {
    "enqueue": "adding a job",
    "enqueue_similar": "adding a job",
    "save": "saving",  # a dialog's ctrl+s (the enqueue form)
    "retry": "retrying or requeueing a job",
    "retry_bulk": "retrying jobs",
    "delete": "deleting a job",
    "delete_bulk": "deleting jobs",
    "cancel_job": "cancelling jobs",
    "start": "starting a worker",
    "stop": "stopping a worker",
    "scale_down": "stopping a worker",
    "stop_all": "stopping workers",
    "toggle_pause": "pausing or resuming",
    "limit": "limiting a queue",
    "run_now": "running a schedule now",
    "edit": "editing settings",
    "edit_job": "editing a job",
    "hold_or_release": "holding or releasing jobs",
    "pause_job": "pausing or resuming a running job",
}
OFF = "read-only console"


class ReadOnlyRefused(QueuectlError):
    """A write asked of a read-only console's database."""


def from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """QUEUECTL_READ_ONLY: 1/true/yes/on or 0/false/no/off (empty: off). Any
    other word is an error rather than a guess: a mistyped "on" must not
    open a console that can change things."""
    value = (os.environ if environ is None else environ).get(ENV, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise UsageError(f"{ENV} must be 1 or 0, not {value!r}")


def action_name(action: Any) -> str:
    """`retry`, from "retry", "screen.retry", "show_stopped(True)" or Textual's
    parsed (namespace, name, arguments)."""
    if isinstance(action, tuple):
        return str(action[1])
    from textual.actions import parse  # the console's own import: Textual is loaded
    return parse(action)[1]


def refusal(action: str) -> str:
    return f"{OFF}: {WRITES.get(action, 'changing the queue')} is off"


class ReadOnlyGate:
    """Mixed into the console's App: with `read_only` set, an action in
    `WRITES` is refused with a notice however it was reached."""

    read_only: bool = False

    def refuses(self, action: str) -> bool:
        """True when `action` (a name, as `check_action` gets it) would change
        something and this console may not."""
        return self.read_only and action in WRITES

    async def run_action(self, action: Any, default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        name = action_name(action)
        if self.refuses(name):
            self.notify(refusal(name), title="Read-only",  # type: ignore[attr-defined]
                        severity="warning", timeout=4)
            return True  # the key is answered: nothing below it runs
        return await super().run_action(  # type: ignore[misc]
            action, default_namespace, namespaces)
