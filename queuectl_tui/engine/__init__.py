"""The queue engine's face: everything the CLI, the console and the workers may use.

The faces import names from here and never from an engine submodule
(`tests/test_layout.py` reads every import and fails on a breach); what is
not named below is the engine's own business and may move freely.

Names resolve lazily (PEP 562), so a headless command imports only the
modules behind the names it touches: `status` on a SQLite file still never
loads Textual, the PostgreSQL driver or the metrics server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# face name -> "submodule:attribute" (the attribute defaults to the face name)
_FACE: dict[str, str] = {
    # the facade, its value types and its errors
    "Queue": "queue",
    "Lease": "claim",
    "Rescued": "rescue",
    "RunAgain": "operator",
    "FailureGroup": "failure_groups",
    "check_group_id": "failure_groups:check_id",
    "failure_signature_shown": "signatures:shown",
    "BLOCKED_S": "rescue",
    "DEFAULT_GRACE_S": "procs",
    "current_host": "context",
    "job_dict": "reads",
    "Taken": "uniqueness",
    # states: one vocabulary
    "State": "states",
    "STATES": "states",
    "STATE_LABELS": "states",
    "FINAL": "states",
    "WAITING": "states",
    "HOLDABLE": "states",
    "UNFINISHED": "states",
    "state_named": "states",
    "check_state": "states",
    # opening a database, and what can go wrong there
    "Opened": "storage.opened",
    "open_database": "storage.opening",
    "schema_moved": "storage.schema",
    "GaveUp": "storage.errors",
    "Unreachable": "storage.errors",
    "CREATE_HINT": "storage.errors",
    "describe_db_error": "storage.errors",
    "is_storage_error": "storage.errors",
    "StorageError": "storage.driver_errors",
    "StorageUnavailable": "storage.driver_errors",
    "interrupt": "storage.databases",
    "was_cancelled": "storage.errors",
    "resolve_target": "storage.location",
    "skip_postgres_driver": "storage.location",
    "is_postgres_url": "storage.location",
    "secrets_of": "storage.location",
    "redact": "storage.location",
    # what a job is made of
    "JobSpec": "jobspec",
    "spec_from_mapping": "jobspec:from_mapping",
    "check_time": "jobspec",
    "parse_job_json": "jobspec:parse_json",
    "looks_like_json": "jobspec:looks_like_json",
    "check_edits": "jobspec",
    # resources: what a job needs and a pool can give
    "Capacity": "resources",
    "Usage": "attempts",
    "parse_rate": "rates",
    "pool_of": "flow",
    "Needs": "resources",
    "parse_capacity": "resources",
    "parse_devices": "resources",
    "parse_size": "resources",
    "format_size": "resources",
    "parse_duration": "durations",
    "format_duration": "durations",
    # a running job's own requests (snooze, extend) and a hand on it (pause)
    "SNOOZE_EXIT": "snooze:EXIT_CODE",
    # reads for the faces
    "JobQuery": "views",
    "EventQuery": "views",
    "AuditQuery": "views",
    "Window": "views",
    "START": "views",
    "END": "views",
    "JOB_SORTS": "views",
    "StateCounts": "views",
    "count_jobs": "views",
    "job_window": "views",
    "job_ids_matching": "views",
    "job_detail": "views",
    "event_window": "views",
    "audit_window": "views",
    "throughput": "views",
    "queue_activity": "views",
    "log_tail": "views",
    "TREND_SPANS": "trends:SPANS",
    "TREND_MAX_ATTEMPTS": "trends:MAX_ATTEMPTS",
    "QueueTrend": "trends",
    "Trends": "trends",
    "read_trends": "trends:read",
    # config
    "CONFIG_KEYS": "config:KEYS",
    "config_key": "config:canonical",
    "check_config": "config:validate",
    "config_value": "config:get",
    "config_values": "config:get_all",
    "config_defaults": "config:defaults",
    # queues
    "check_queue_name": "queues:check_name",
    "parse_queue_names": "queues:parse_names",
    "parse_queue_limit": "queues:parse_limit",
    "queue_rules": "queues:read_rules",
    # schedules
    "add_schedule": "schedules:add",
    "remove_schedule": "schedules:remove",
    "list_schedules": "schedules:list_all",
    "run_schedule_now": "schedules:run_now",
    "pause_schedule": "schedules:set_paused",
    "fire_due_schedules": "schedules:fire_due",
    "check_schedule_name": "schedules:check_name",
    "check_cron": "schedules:check_cron",
    "check_zone": "schedules:check_zone",
    # a job's output
    "TAIL_CHARS": "logs",
    "decode_tail": "logs",
    "make_private_dir": "logs",
    "open_log_for_append": "logs:open_for_append",
    "log_size": "logs",
    "read_log_range": "logs:read_range",
    "find_in_log": "logs:find",
    # workers and their bookkeeping
    "LIVE_STATES": "registry",
    "register_worker": "registry:register",
    "worker_beat": "registry:beat",
    "worker_stopped": "registry:stopped",
    "worker_gone": "registry:gone",
    "CLAIM_MARKER": "procs:MARKER",
    "Claimed": "storage.columns",
    "HOOKS_CHANNEL": "storage.backends.base",
    "backend_for": "storage.backends",
    "refresh_stored_counts": "counts:refresh_stored",
    # finish hooks
    "HOOK_MAX_TRIES": "hooks:MAX_TRIES",
    "hooks_waiting": "hooks:waiting",
    "take_hooks": "hooks:take",
    "settle_hook": "hooks:settle",
    "hook_env": "hooks:env_for",
    # jobs that talk back: progress and results
    "Progress": "progress",
    "parse_progress": "progress:parse",
    "check_progress_message": "progress:check_message",
    "check_progress_pattern": "progress:check_pattern",
    "progress_pattern": "progress:compiled",
    "progress_from_line": "progress:from_line",
    "progress_of": "progress:shown_of",
    "RESULT_MOST_BYTES": "results:MOST_BYTES",
    # metrics
    "serve_metrics": "metrics:serve",
    "metrics_exposition": "metrics:exposition",
    # completion lookups (fast, capped)
    "known_timeouts": "lookups:timeouts",
    "known_job_ids": "lookups:job_ids",
    "known_config_keys": "lookups:config_keys",
    "known_schedule_names": "lookups:schedule_names",
    "known_group_ids": "failure_groups:ids",
}

__all__ = sorted(_FACE)


def __getattr__(name: str) -> Any:
    """Import the module behind a face name on first use and keep the value."""
    where = _FACE.get(name)
    if where is None:
        raise AttributeError(f"queuectl_tui.engine has no {name!r} in its face")
    module_name, _, attribute = where.partition(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    value = getattr(module, attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from .queue import Queue
