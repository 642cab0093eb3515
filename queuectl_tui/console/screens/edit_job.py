"""`e`: the job's form, filled in from it, to change a job that has not started.

The enqueue form (screens/enqueue.py) with the fields `queuectl edit` takes.
Only fields whose text changed are sent; they are checked by the engine's
rules before saving (errors in red under the form, nothing saved), and the
save is conditioned on the job as the form read it: a job that started, or
changed in any way, since the form opened is refused and nothing changes.
"""

from __future__ import annotations

import json
from typing import Any

from queuectl_tui.console.context import console_of
from queuectl_tui.console.screens.enqueue import EnqueueDialog, form_seconds, form_whole
from queuectl_tui.engine import Queue, check_edits
from queuectl_tui.errors import QueuectlError, UsageError

FIELDS = (
    ("command", "Command", "the shell command it runs"),
    ("priority", "Priority", "higher runs first"),
    ("max_retries", "Max retries", "retries after the first run"),
    ("delay", "Delay", "from now: 0, 10s, 5m… (empty: as it is)"),
    ("timeout", "Timeout", "e.g. 60s (empty: none)"),
    ("queue", "Queue", "default"),
    ("cwd", "Directory", "an absolute path"),
    ("env", "Environment", '{"NAME": "value"} (empty: none)'),
)


def form_values(job: dict[str, Any]) -> dict[str, str]:
    """A job's stored fields as the form shows them (`job_detail`'s raw row)."""
    env = json.loads(job["env"]) if job.get("env") else {}
    return {"command": job["command"], "priority": str(job["priority"]),
            "max_retries": str(job["max_retries"]), "delay": "",
            "timeout": f"{job['timeout']:g}s" if job.get("timeout") else "",
            "queue": job.get("queue") or "", "cwd": job.get("cwd") or "",
            "env": json.dumps(env, ensure_ascii=False) if env else ""}


def changes_from_form(before: dict[str, str], after: dict[str, str]) -> dict[str, Any]:
    """The fields whose text changed, as `Queue.edit` takes them, checked by the
    engine's rules (UsageError says what is wrong); empty: nothing changed."""
    changes: dict[str, Any] = {}
    for name in ("command", "queue", "cwd"):
        if after[name] != before[name]:
            changes[name] = after[name].strip() if name != "command" else after[name]
    for name in ("priority", "max_retries"):
        if after[name].strip() != before[name]:
            changes[name] = form_whole(name, after[name].strip())
    if after["delay"].strip():
        changes["delay"] = form_seconds("delay", after["delay"].strip())
    if after["timeout"].strip() != before["timeout"]:
        text = after["timeout"].strip()
        changes["timeout"] = form_seconds("timeout", text) if text else 0.0
    if after["env"].strip() != before["env"]:
        changes.update(_env_changes(before["env"], after["env"].strip()))
    return check_edits(changes)


def _env_changes(before: str, after: str) -> dict[str, Any]:
    try:
        new = json.loads(after) if after else {}
    except ValueError:
        raise UsageError('environment must be a JSON object: {"NAME": "value"}') from None
    if not isinstance(new, dict):
        raise UsageError('environment must be a JSON object: {"NAME": "value"}')
    old = json.loads(before) if before else {}
    out: dict[str, Any] = {}
    set_ = {k: v for k, v in new.items() if old.get(k) != v}
    if set_:
        out["env"] = set_
    gone = [k for k in old if k not in new]
    if gone:
        out["unset_env"] = gone
    return out


def _edit(queue: Queue, job_id: str, changes: dict[str, Any],
          expect: tuple[str, float]) -> dict[str, Any]:
    return queue.edit(job_id, changes, expect=expect)


class EditJobDialog(EnqueueDialog):
    """Enter saves (from any field); Esc cancels; errors show in red under the form."""

    FIELDS = FIELDS
    SAVE = "Save"

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        super().__init__(form_values(job))

    def heading(self) -> str:
        return f"[b]Edit {self.job['id']}[/b] [dim]({self.job['state']})[/dim]"

    def extra_buttons(self) -> Any:
        return iter(())

    def checked(self, hold: bool) -> dict[str, Any]:
        changes = changes_from_form(self.start_values, self.values())
        if not changes:
            raise UsageError("nothing to change: edit a field first (esc leaves)")
        return changes

    async def _save(self, changes: dict[str, Any]) -> None:  # type: ignore[override]
        console = console_of(self)
        expect = (self.job["state"], self.job["updated_at"])
        try:
            job = await console.db.write(_edit, self.job["id"], changes, expect)
        except QueuectlError as exc:
            self._error(str(exc))
            return
        console.notify(f"edited {job['id']}: " + ", ".join(sorted(changes)).replace("_", " "),
                       timeout=4, markup=False)
        console.request_refresh()
        self.dismiss(None)

