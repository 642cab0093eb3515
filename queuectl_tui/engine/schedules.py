"""Recurring schedules: a cron expression in a time zone and the job it enqueues.

Schedules live in the `schedule` table, so every host sees the same ones. Each
pool's supervisor calls `fire_due` about ten times a second (workers/services/scheduler.py);
whichever process gets there first enqueues a tick's job:

- A tick's job id is derived from the schedule's name and the tick
  (`nightly@20261124T0300Z`), so the database itself refuses a second job for
  one tick.
- In the same transaction the schedule row is moved on with a conditional
  UPDATE (`WHERE next_run_at = the value read`): a process that read the same
  row updates nothing and enqueues nothing.

Missed ticks (no pool ran for a while): by default one job, for the latest
missed tick; with `catch_up`, every missed tick, at most MAX_CATCH_UP per round.
Times come from cronsim over zoneinfo, with cron's own rules for daylight
saving: a fixed-time job (`30 2 * * *`) whose local time does not exist that
day runs when the clock jumps, and once on the day the hour repeats; a job with
a wildcard hour (`0 * * * *`) runs every real hour.
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import peewee as pw
from cronsim import CronSim, CronSimError

from queuectl_tui.clock import iso
from queuectl_tui.engine import audit, enqueue, jobspec
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.storage.models import Job, Schedule
from queuectl_tui.engine.reads import job_dict
from queuectl_tui.errors import Conflict, NotFound, UsageError

if TYPE_CHECKING:
    from queuectl_tui.engine.queue import Queue

# No `@` (it separates the name from the tick in job ids) and short enough that
# NAME@TICK stays within the job id alphabet and length.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_CATCH_UP = 100  # ticks one firing round enqueues for one schedule (catch_up)
ALIASES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@hourly": "0 * * * *"}
UTC = timezone.utc


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise UsageError(f"invalid schedule name {str(name)[:40]!r}: use 1-64 letters, "
                         "digits or . _ - (starting with a letter or digit)")
    return name


def check_zone(name: str) -> ZoneInfo:
    try:
        if name and not name.startswith(("/", ".")) and ".." not in name:
            return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    raise UsageError(f"unknown time zone {name[:60]!r}: use an IANA name such as UTC, "
                     "Europe/Berlin or America/New_York")


def expand(cron: str) -> str:
    """The expression cronsim reads: @daily and friends spelled out."""
    text = " ".join(cron.split())
    return ALIASES.get(text.lower(), text)


def check_cron(cron: str, zone: ZoneInfo = ZoneInfo("UTC"), now: float | None = None) -> str:
    """A 5-field cron expression (or 6, seconds first; or @hourly, @daily, ...)
    that fires at least once in the next 50 years; returned tidied up."""
    text = " ".join(str(cron).split())
    try:
        if len(text) > 200:
            raise CronSimError("too long")
        CronSim(expand(text), datetime.now(UTC))
    except (CronSimError, ValueError) as exc:
        raise UsageError(f"invalid cron expression {text[:60]!r}: {exc}; expected 5 fields "
                         "(minute hour day-of-month month day-of-week, e.g. '30 2 * * *'), "
                         "6 with seconds first, or @hourly/@daily/@weekly/@monthly/@yearly"
                         ) from None
    if next_after(text, zone, time.time() if now is None else now) is None:
        raise UsageError(f"cron expression {text[:60]!r} never matches a date")
    return text


# ---------------------------------------------------------------- tick arithmetic

def _ticks(cron: str, zone: ZoneInfo, at: float, reverse: bool = False) -> Iterator[float]:
    try:
        for dt in CronSim(expand(cron), datetime.fromtimestamp(at, zone), reverse=reverse):
            yield dt.timestamp()
    except StopIteration:  # cronsim gives up after 50 years without a match
        return


def next_after(cron: str, zone: ZoneInfo, after: float) -> float | None:
    """The first tick strictly after `after` (epoch seconds), or None if none comes.

    cronsim walks fixed-time expressions in local wall time, which forgets on
    which side of a repeated (fall-back) hour `after` lies; a tick at or before
    `after` is skipped rather than fired twice.
    """
    for n, tick in enumerate(_ticks(cron, zone, after)):
        if tick > after:
            return tick
        if n > 1000:
            break
    return None


def latest_at_or_before(cron: str, zone: ZoneInfo, at: float) -> float | None:
    """The last tick at or before `at`: cronsim walked backwards, then checked
    forwards (walking back through a repeated hour can land a tick early)."""
    found = None
    for n, tick in enumerate(_ticks(cron, zone, math.floor(at) + 1, reverse=True)):
        if tick <= at:
            found = tick
            break
        if n > 1000:
            return None
    if found is None:
        return None
    for _ in range(1000):
        later = next_after(cron, zone, found)
        if later is None or later > at:
            break
        found = later
    return found


def tick_id(name: str, tick: float) -> str:
    """The job id of a tick: NAME@20261124T0300Z (seconds only when not 0)."""
    stamp = time.gmtime(tick)
    text = time.strftime("%Y%m%dT%H%M", stamp) + (f"{stamp.tm_sec:02d}" if stamp.tm_sec else "")
    return f"{name}@{text}Z"


# ---------------------------------------------------------------- reading

def schedule_dict(row: Schedule, job: dict[str, Any] | None = None) -> dict[str, Any]:
    """The public shape of a schedule (`schedule list --json`, the console)."""
    return {
        "name": row.name, "cron": row.cron, "tz": row.tz, "command": row.command,
        "queue": row.queue, "max_retries": row.max_retries, "timeout": row.timeout,
        "priority": row.priority, "cwd": row.cwd,
        "env": json.loads(row.env) if row.env else {},
        "paused": bool(row.paused), "catch_up": bool(row.catch_up),
        "next_run_at": None if row.paused else iso(row.next_run_at),
        "last_run_at": iso(row.last_run_at), "last_job_id": row.last_job_id,
        "last_job_state": None if job is None else job["state"],
        "last_job_exit_code": None if job is None else job["exit_code"],
        "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
    }


def get(name: str) -> Schedule:
    row = Schedule.get_or_none(Schedule.name == check_name(name))
    if row is None:
        raise NotFound(f"no schedule named {name!r}; `queuectl schedule list` shows them")
    return row


def list_all(name: str | None = None) -> list[dict[str, Any]]:
    """Every schedule (or one), by name, with its last job's state."""
    rows = list(Schedule.select().order_by(Schedule.name) if name is None
                else [get(name)])
    last = {r.last_job_id for r in rows if r.last_job_id}
    jobs: dict[str, dict[str, Any]] = {}
    if last:
        for job_id, state, code in Job.select(Job.id, Job.state, Job.exit_code).where(
                Job.id.in_(sorted(last))).tuples():
            jobs[job_id] = {"state": state, "exit_code": code}
    return [schedule_dict(r, jobs.get(r.last_job_id or "")) for r in rows]


# ---------------------------------------------------------------- changes

def add(queue: Queue, name: str, cron: str, command: str, *, tz: str = "UTC",
        catch_up: bool = False, queue_name: str | None = None,
        max_retries: int | None = None, timeout: float | None = None, priority: int = 0,
        cwd: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A new schedule; its first tick is the first after now. Exit 4 if the name is taken."""
    check_name(name)
    zone = check_zone(tz)
    now = queue.clock.now()
    cron = check_cron(cron, zone, now)
    template = {"command": command, "queue": queue_name, "max_retries": max_retries,
                "timeout": timeout, "priority": priority, "cwd": cwd, "env": env}
    spec = jobspec.from_mapping({k: v for k, v in template.items() if v is not None})
    row = {"name": name, "cron": cron, "tz": tz, "command": spec.command,
           "queue": spec.queue or "default", "max_retries": spec.max_retries,
           "timeout": spec.timeout, "priority": spec.priority, "cwd": spec.cwd,
           "env": json.dumps(spec.env) if spec.env else None, "paused": False,
           "catch_up": catch_up, "next_run_at": next_after(cron, zone, now),
           "created_at": now, "updated_at": now}
    try:
        with queue.db.atomic():
            if Schedule.get_or_none(Schedule.name == name) is not None:
                raise Conflict(f"a schedule named {name!r} already exists; "
                               f"`queuectl schedule remove {name}` first to replace it")
            Schedule.insert(row).execute()
            audit.record(queue.ctx, "schedule add", target=name,
                         detail={"cron": cron, "tz": tz, "command": spec.command})
    except pw.IntegrityError:
        raise Conflict(f"a schedule named {name!r} already exists") from None
    return list_all(name)[0]


def set_paused(queue: Queue, name: str, paused: bool) -> dict[str, Any]:
    """Pause: no ticks fire. Resume: the next tick is the first after now (ticks
    that fell in the pause are skipped, not caught up: pausing meant "not now")."""
    with queue.db.atomic():
        row = get(name)
        now = queue.clock.now()
        fields: dict[str, Any] = {"paused": paused, "updated_at": now}
        if not paused and row.paused:
            fields["next_run_at"] = next_after(row.cron, check_zone(row.tz), now)
        Schedule.update(fields).where(Schedule.name == row.name).execute()
        audit.record(queue.ctx, "schedule pause" if paused else "schedule resume",
                     target=row.name)
    return list_all(name)[0]


def remove(queue: Queue, name: str) -> dict[str, Any]:
    """Delete a schedule; the jobs it made stay (with its name on them)."""
    with queue.db.atomic():
        found = list_all(name)[0]
        Schedule.delete().where(Schedule.name == found["name"]).execute()
        audit.record(queue.ctx, "schedule remove", target=found["name"])
    return found


def run_now(queue: Queue, name: str) -> dict[str, Any]:
    """Enqueue one job of the schedule now, outside its ticks: its own id
    (NAME@run-…), no tick; it counts as the schedule's last run."""
    with queue.db.atomic():
        row = get(name)
        now = queue.clock.now()
        job_id = f"{row.name}@run-{queue.ids.new()}"
        enqueue.enqueue_many(queue.ctx, [_spec(row, job_id, tick=None, run_at=now)])
        audit.record(queue.ctx, "schedule run", target=row.name, jobs=[job_id])
        Schedule.update(last_run_at=now, last_job_id=job_id, updated_at=now).where(
            Schedule.name == row.name).execute()
    return job_dict(queue.get(job_id))


def _spec(row: Schedule, job_id: str, *, tick: float | None, run_at: float) -> JobSpec:
    return JobSpec(command=row.command, id=job_id, max_retries=row.max_retries,
                   priority=row.priority, run_at=run_at, timeout=row.timeout, cwd=row.cwd,
                   env=json.loads(row.env) if row.env else None, queue=row.queue,
                   schedule=row.name, schedule_tick=tick)


# ---------------------------------------------------------------- firing

def due_ticks(row: Schedule, now: float) -> tuple[list[float], float | None]:
    """The ticks to enqueue for a due schedule, and its next tick after them."""
    zone = check_zone(row.tz)
    first = row.next_run_at
    if row.catch_up:
        ticks = [first]
        while len(ticks) < MAX_CATCH_UP:
            later = next_after(row.cron, zone, ticks[-1])
            if later is None or later > now:
                break
            ticks.append(later)
    else:
        latest = latest_at_or_before(row.cron, zone, now)
        ticks = [latest if latest is not None and latest > first else first]
    return ticks, next_after(row.cron, zone, ticks[-1])


def fire_due(queue: Queue, now: float | None = None) -> list[tuple[str, list[str]]]:
    """Enqueue the jobs of every due schedule; returns (schedule, job ids) for the
    ones this process fired. One indexed read when nothing is due."""
    now = queue.clock.now() if now is None else now
    due = list(Schedule.select().where(Schedule.paused == False,  # noqa: E712
                                       Schedule.next_run_at <= now)
               .order_by(Schedule.next_run_at))
    fired = []
    for row in due:
        try:
            ids = _fire(queue, row, now)
        except Conflict:
            continue  # a tick's job appeared meanwhile: another process fired it
        except UsageError:
            continue  # a zone this host's tzdata lacks: another host may know it
        if ids:
            fired.append((row.name, ids))
    return fired


def _fire(queue: Queue, row: Schedule, now: float) -> list[str]:
    ticks, following = due_ticks(row, now)
    ids = [tick_id(row.name, tick) for tick in ticks]
    with queue.db.atomic():
        moved = Schedule.update(next_run_at=following, last_run_at=ticks[-1],
                                last_job_id=ids[-1], updated_at=now).where(
            Schedule.name == row.name, Schedule.next_run_at == row.next_run_at,
            Schedule.paused == False).execute()  # noqa: E712
        if moved != 1:
            return []  # another process moved it on (or it was paused, removed, changed)
        # A tick whose job exists already (the schedule was removed and added again
        # under the same name) is not enqueued twice; the schedule still moves on.
        taken = {j for (j,) in Job.select(Job.id).where(Job.id.in_(ids)).tuples()}
        specs = [_spec(row, job_id, tick=tick, run_at=tick)
                 for job_id, tick in zip(ids, ticks) if job_id not in taken]
        if specs:
            queue.enqueue_many(specs)
    return [spec.id for spec in specs]
