"""A job's result: a small JSON value it stores about itself while it runs
(`queuectl result set`), read back by id, and handed to the jobs enqueued
`--after` it (`queuectl result --deps`, and the ids in QUEUECTL_AFTER).

A result is validated JSON of at most the config's `result-max-bytes` (default
64 KiB, at most 1 MiB), stored as given. Like progress, it is written only
while the job runs, by its own run when the caller holds the claim token. It
stays with the job until a later run stores another.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from queuectl_tui.engine import config, reports
from queuectl_tui.engine.context import Context
from queuectl_tui.engine.states import State
from queuectl_tui.errors import NoResult, NotFound, UsageError

LIMIT_KEY = "result-max-bytes"
MOST_BYTES = 1 << 20  # the most `result-max-bytes` may be set to
CHUNK = 200  # dependencies read at a time


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def check(text: str, limit: int) -> str:
    """`text` if it is one JSON value of at most `limit` bytes (UTF-8), else a
    usage error saying what is wrong (and the limit)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise UsageError(f"result is {size:,} bytes; the limit is {limit:,} "
                         f"(config {LIMIT_KEY}, at most {MOST_BYTES:,})")
    body = text.strip()
    if not body:
        raise UsageError("result is empty: give a JSON value, e.g. '{\"rows\": 42}'")
    try:
        _DECODER.decode(body)
    except (ValueError, RecursionError) as exc:
        what = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc).split(";")[0]
        raise UsageError(f"result is not valid JSON: {what or 'nested too deeply'}") from None
    return body


def store(ctx: Context, job_id: str, token: str | None, text: str) -> int:
    """Store a running job's result; returns its size in bytes. NotFound, or
    Conflict when the job is not running (or runs another claim)."""
    body = check(text, int(config.get(LIMIT_KEY)))
    p = ctx.db.param
    where = f"id = {p} AND state = '{State.PROCESSING.value}'"
    args: tuple[Any, ...] = (body, job_id)
    if token is not None:
        where += f" AND claim_token = {p}"
        args += (token,)
    with ctx.db.atomic():
        changed = ctx.db.execute_sql(f"UPDATE job SET result = {p} WHERE {where}",
                                     args).rowcount
    if not changed:
        reports.refuse(ctx, job_id, token, "result")
    return len(body.encode("utf-8", "surrogatepass"))


def read(ctx: Context, job_id: str) -> str:
    """A job's result as stored (JSON text); NotFound, or NoResult."""
    p = ctx.db.param
    row = ctx.db.execute_sql(f"SELECT state, result FROM job WHERE id = {p}",
                             (job_id,)).fetchone()
    if row is None or row[0] == State.STAGED:
        raise NotFound(f"no job with id {job_id!r}")
    if row[1] is None:
        still = " yet" if row[0] != State.COMPLETED else ""
        raise NoResult(f"job {job_id} ({row[0]}) has no result{still}: a job stores one "
                       "with `queuectl result set JSON` while it runs")
    return row[1]


def dependency_ids(ctx: Context, job_id: str) -> list[str]:
    """The jobs `job_id` was enqueued --after, in the order given."""
    p = ctx.db.param
    return [row[0] for row in ctx.db.execute_sql(
        f"SELECT needs FROM dependency WHERE job_id = {p} ORDER BY seq", (job_id,))]


def of_dependencies(ctx: Context, job_id: str) -> Iterator[tuple[str, str | None]]:
    """(dependency id, its result as stored, or None: none stored, or the job
    was pruned), a chunk of rows at a time: a job may wait for many."""
    p = ctx.db.param
    row = ctx.db.execute_sql(f"SELECT state FROM job WHERE id = {p}", (job_id,)).fetchone()
    if row is None or row[0] == State.STAGED:
        raise NotFound(f"no job with id {job_id!r}")
    ids = dependency_ids(ctx, job_id)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        marks = ", ".join([p] * len(chunk))
        found = dict(ctx.db.execute_sql(f"SELECT id, result FROM job WHERE id IN ({marks})",
                                        chunk).fetchall())
        for dep in chunk:
            yield dep, found.get(dep)
