"""Peewee models behind one database proxy, so the backend is chosen at run time.

Times are stored as float seconds since the epoch (UTC): they compare and
index the same way on SQLite and PostgreSQL, and the faces format them as
ISO 8601 at the edge.
"""

from __future__ import annotations

import peewee as pw

database = pw.DatabaseProxy()


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Job(BaseModel):
    """A shell command and everything known about its runs.

    `seq` orders jobs by age and pages them (keyset); `id` is the name users see.
    `claim_token` changes on every claim, and every change a worker makes is
    conditioned on it, so a stalled worker can never overwrite a newer run.
    """

    seq = pw.AutoField()
    id = pw.CharField(max_length=128, unique=True)
    command = pw.TextField()
    state = pw.CharField(max_length=16)
    prev_state = pw.CharField(max_length=16, null=True)  # set by the claim, for its event
    attempts = pw.IntegerField(default=0)
    max_retries = pw.IntegerField()
    priority = pw.IntegerField(default=0)
    run_at = pw.DoubleField()
    timeout = pw.DoubleField(null=True)
    created_at = pw.DoubleField()
    updated_at = pw.DoubleField()
    started_at = pw.DoubleField(null=True)
    finished_at = pw.DoubleField(null=True)
    exit_code = pw.IntegerField(null=True)
    last_error = pw.TextField(null=True)
    worker_id = pw.CharField(max_length=128, null=True)
    claim_token = pw.CharField(max_length=32, null=True)
    lease_expires_at = pw.DoubleField(null=True)
    run_pid = pw.IntegerField(null=True)  # process group of the running command
    run_host = pw.CharField(max_length=255, null=True)
    stdout_tail = pw.TextField(null=True)
    stderr_tail = pw.TextField(null=True)
    # Schema v3: where and with what the command runs, stopping a running job,
    # and bulk enqueues written in slices before they are published.
    cwd = pw.TextField(null=True)  # None: the worker's own directory (jobs made before v3)
    env = pw.TextField(null=True)  # JSON object of extra variables, or None
    cancel_requested_at = pw.DoubleField(null=True)  # set on a running job: stop it
    cancel_grace = pw.DoubleField(null=True)  # seconds between SIGTERM and SIGKILL
    batch = pw.CharField(max_length=32, null=True)  # the bulk enqueue that staged it
    # Every claim in the job's life (`attempts` counts this series). A SQL default:
    # the bulk insert names only the columns it sets.
    runs = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
    # Schema v4: the named queue it belongs to (engine/queues.py).
    queue = pw.CharField(max_length=32, default="default",
                         constraints=[pw.SQL("DEFAULT 'default'")])
    # Schema v5: work over time. The schedule and tick that made it; a key only one
    # unfinished job may hold (engine/uniqueness.py) and for how long after it
    # finished; exit codes (and "timeout") that go straight to the DLQ.
    schedule = pw.CharField(max_length=64, null=True)
    schedule_tick = pw.DoubleField(null=True)
    unique_key = pw.CharField(max_length=255, null=True)
    unique_for = pw.DoubleField(null=True)
    no_retry_on = pw.CharField(max_length=255, null=True)
    # Schema v8: flow control (engine/flow.py). The key per-key limits count by;
    # what the job needs of its pool (None: nothing stated); and, while it runs,
    # the pool that holds it and the GPU devices it was given.
    key = pw.CharField(max_length=255, null=True)
    cpus = pw.DoubleField(null=True)
    mem = pw.BigIntegerField(null=True)
    gpus = pw.IntegerField(null=True)
    run_pool = pw.CharField(max_length=255, null=True)
    devices = pw.CharField(max_length=255, null=True)
    # Schema v9: what a running job says about itself (engine/progress.py,
    # engine/results.py): progress as done of total (total None: a percentage),
    # a short message, when it last reported, the pattern its output lines are
    # read with; its result. Snoozes in this run series and the delay a running
    # job asked for (`queuectl snooze`); seconds its own `extend` added to its
    # timeout; a pause asked of it (`pause`), when its worker stopped its
    # processes and the seconds it spent stopped before (its timeout's clock
    # does not run while paused).
    progress_done = pw.DoubleField(null=True)
    progress_total = pw.DoubleField(null=True)
    progress_message = pw.TextField(null=True)
    progress_at = pw.DoubleField(null=True)
    progress_regex = pw.TextField(null=True)
    result = pw.TextField(null=True)
    snoozes = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
    snooze_for = pw.DoubleField(null=True)
    extended_by = pw.DoubleField(null=True)
    pause_requested = pw.BooleanField(default=False, constraints=[pw.SQL("DEFAULT FALSE")])
    paused_at = pw.DoubleField(null=True)
    paused_for = pw.DoubleField(null=True)
    # How its last run failed, made generic (engine/signatures.py): the DLQ groups by it.
    failure_sig = pw.CharField(max_length=255, null=True)

    class Meta:
        indexes = ((("state", "seq"), False),)


class Event(BaseModel):
    """One state change. Kept after the job is deleted: history outlives jobs."""

    seq = pw.AutoField()
    job_id = pw.CharField(max_length=128)
    from_state = pw.CharField(max_length=16, null=True)
    to_state = pw.CharField(max_length=16)
    attempt = pw.IntegerField(default=0)
    exit_code = pw.IntegerField(null=True)
    worker_id = pw.CharField(max_length=128, null=True)
    at = pw.DoubleField()
    note = pw.TextField(null=True)
    # v9: who made the change when a person did (engine/audit.py), e.g.
    # `alice@box (cli)`; None for the pool's own moves.
    actor = pw.CharField(max_length=255, null=True)

    class Meta:
        indexes = ((("job_id", "seq"), False), (("at",), False))


class Attempt(BaseModel):
    """One run of a job: kept across requeues, so a job's whole life can be read back.

    `number` counts every run the job ever had (a requeue or a DLQ retry starts
    the retry budget afresh, not the numbering). `log_offset` is where this
    run's output starts in the job's log file.
    """

    seq = pw.AutoField()
    job_id = pw.CharField(max_length=128)
    number = pw.IntegerField()
    started_at = pw.DoubleField()
    ended_at = pw.DoubleField(null=True)
    exit_code = pw.IntegerField(null=True)
    reason = pw.CharField(max_length=16, null=True)  # exit, timeout, cancelled, rescued, ...
    error = pw.TextField(null=True)
    worker_id = pw.CharField(max_length=128, null=True)
    host = pw.CharField(max_length=255, null=True)
    log_offset = pw.BigIntegerField(null=True)
    # Schema v8: what the run used (its process tree's peak memory and CPU time),
    # how its memory limit was enforced (cgroup v2, cgroup v1, rlimit; None:
    # no limit) and the GPU devices it was given.
    peak_mem = pw.BigIntegerField(null=True)
    cpu_s = pw.DoubleField(null=True)
    mem_limit_by = pw.CharField(max_length=16, null=True)
    devices = pw.CharField(max_length=255, null=True)

    class Meta:
        indexes = ((("job_id", "number"), False),)


class Batch(BaseModel):
    """A bulk enqueue in progress: its rows are staged until `sealed_at` is set,
    then published; an unsealed batch whose writer died is removed whole."""

    id = pw.CharField(max_length=32, primary_key=True)
    host = pw.CharField(max_length=255)
    pid = pw.IntegerField()
    created_at = pw.DoubleField()
    sealed_at = pw.DoubleField(null=True)
    rows = pw.IntegerField(default=0)


class StagedJob(BaseModel):
    """A row of a bulk enqueue with generated ids, before it is published: the
    job's insert columns only, in a table with no index but its key, so a big
    file is written cheaply and each row reaches `job` (and its indexes) once.
    Bulk enqueues that name their ids stage in `job` itself (state `staged`),
    where the unique index settles a race for an id before the commit point."""

    seq = pw.AutoField()  # the file's order, kept into job.seq at publish
    batch = pw.CharField(max_length=32)
    id = pw.CharField(max_length=128)
    command = pw.TextField()
    state = pw.CharField(max_length=16)
    attempts = pw.IntegerField()
    max_retries = pw.IntegerField()
    priority = pw.IntegerField()
    run_at = pw.DoubleField()
    timeout = pw.DoubleField(null=True)
    created_at = pw.DoubleField()
    updated_at = pw.DoubleField()
    cwd = pw.TextField(null=True)
    env = pw.TextField(null=True)
    queue = pw.CharField(max_length=32)
    schedule = pw.CharField(max_length=64, null=True)
    schedule_tick = pw.DoubleField(null=True)
    unique_key = pw.CharField(max_length=255, null=True)
    unique_for = pw.DoubleField(null=True)
    no_retry_on = pw.CharField(max_length=255, null=True)
    key = pw.CharField(max_length=255, null=True)
    cpus = pw.DoubleField(null=True)
    mem = pw.BigIntegerField(null=True)
    gpus = pw.IntegerField(null=True)
    progress_regex = pw.TextField(null=True)  # v9


class Dependency(BaseModel):
    """`job_id` runs only after `needs` has completed (enqueue --after)."""

    seq = pw.AutoField()
    job_id = pw.CharField(max_length=128)
    needs = pw.CharField(max_length=128)

    class Meta:
        indexes = ((("needs",), False), (("job_id",), False))


class UniqueLock(BaseModel):
    """A unique key and the job holding it: the primary key is what makes two
    enqueues at the same instant produce one job. `until` is when it lapses
    (far in the future while the job is unfinished)."""

    key = pw.CharField(max_length=255, primary_key=True)
    job_id = pw.CharField(max_length=128, index=True)
    until = pw.DoubleField()


class Schedule(BaseModel):
    """A recurring job: a cron expression in a time zone and the job to enqueue.

    `next_run_at` is the next tick (epoch seconds); a tick is enqueued by the one
    process whose conditional update moves it on, and its job id names the
    schedule and tick, so the database refuses a second job for one tick.
    """

    name = pw.CharField(max_length=64, primary_key=True)
    cron = pw.CharField(max_length=255)
    tz = pw.CharField(max_length=64, default="UTC")
    command = pw.TextField()
    queue = pw.CharField(max_length=32, default="default")
    max_retries = pw.IntegerField(null=True)
    timeout = pw.DoubleField(null=True)
    priority = pw.IntegerField(default=0)
    cwd = pw.TextField(null=True)
    env = pw.TextField(null=True)
    paused = pw.BooleanField(default=False)
    catch_up = pw.BooleanField(default=False)  # every missed tick, not only the latest
    next_run_at = pw.DoubleField(null=True)
    last_run_at = pw.DoubleField(null=True)
    last_job_id = pw.CharField(max_length=128, null=True)
    created_at = pw.DoubleField()
    updated_at = pw.DoubleField()


class HookRun(BaseModel):
    """A finish hook to run: written in the transaction that finished the job,
    taken by a supervisor after the commit (engine/hooks.py)."""

    seq = pw.AutoField()
    job_id = pw.CharField(max_length=128)
    state = pw.CharField(max_length=16)
    exit_code = pw.IntegerField(null=True)
    queue = pw.CharField(max_length=32)
    attempt = pw.IntegerField()
    command = pw.TextField()
    created_at = pw.DoubleField()
    taken_until = pw.DoubleField(null=True)
    taken_by = pw.CharField(max_length=255, null=True)
    tries = pw.IntegerField(default=0)


class NamedQueue(BaseModel):
    """A queue's settings. A row exists for every queue a job or a setting has
    named (enqueue adds it in the same transaction as its jobs), so the claim can
    list the queues from here instead of scanning jobs.

    Retention (`keep_*`, seconds): None follows the config default, 0 keeps forever.
    """

    name = pw.CharField(max_length=32, primary_key=True)
    paused = pw.BooleanField(default=False)
    max_running = pw.IntegerField(null=True)  # None: no limit
    keep_completed = pw.DoubleField(null=True)
    keep_dead = pw.DoubleField(null=True)
    keep_cancelled = pw.DoubleField(null=True)
    created_at = pw.DoubleField()
    finish_hook = pw.TextField(null=True)  # v5: overrides the config's finish-hook
    # v8: flow control (engine/flow.py). At most rate_limit starts in any
    # rate_period seconds (per key value with rate_per_key); at most key_limit
    # running jobs per key value; `needs` is set once a job of the queue states
    # resources, so claims from queues that never do skip the capacity check.
    rate_limit = pw.IntegerField(null=True)
    rate_period = pw.DoubleField(null=True)
    rate_per_key = pw.BooleanField(default=False, constraints=[pw.SQL("DEFAULT FALSE")])
    key_limit = pw.IntegerField(null=True)
    needs = pw.BooleanField(default=False, constraints=[pw.SQL("DEFAULT FALSE")])
    # The most any of its jobs ever stated (kept, never lowered): how much room
    # a claim made side by side with others must leave (engine/headroom.py).
    max_cpus = pw.DoubleField(null=True)
    max_mem = pw.BigIntegerField(null=True)
    max_gpus = pw.IntegerField(null=True)
    # v9: the pattern its jobs' output lines give progress by (unless a job
    # names its own), and the longest timeout `extend` may take a job to.
    progress_regex = pw.TextField(null=True)
    max_timeout = pw.DoubleField(null=True)

    class Meta:
        table_name = "queue"


class Worker(BaseModel):
    """A worker process as it reports itself; `heartbeat_at` tells whether it lives."""

    id = pw.CharField(max_length=128, primary_key=True)
    host = pw.CharField(max_length=255)
    pid = pw.IntegerField()
    supervisor_pid = pw.IntegerField(null=True)
    state = pw.CharField(max_length=16)  # idle, busy, stopping, stopped, gone
    job_id = pw.CharField(max_length=128, null=True)
    job_started_at = pw.DoubleField(null=True)
    started_at = pw.DoubleField()
    heartbeat_at = pw.DoubleField()
    jobs_done = pw.IntegerField(default=0)
    jobs_failed = pw.IntegerField(default=0)
    stop_requested = pw.BooleanField(default=False)
    stop_grace = pw.DoubleField(null=True)  # set: stop now, running job SIGTERMed, then SIGKILL
    queues = pw.TextField(null=True)  # v4: the queues it serves, comma-separated; None: all
    schema_version = pw.IntegerField(null=True)  # v7: the schema it was built for
    # v8: the pool it belongs to (host:supervisor pid) and what that pool can give.
    pool = pw.CharField(max_length=255, null=True)
    capacity = pw.TextField(null=True)  # JSON: engine/resources.Capacity


class Start(BaseModel):
    """One start of a job of a rate-limited queue (engine/rates.py); `key` is ''
    for a whole-queue rate. The window is counted from these; rows older than
    the queue's period are removed as new ones are written."""

    seq = pw.AutoField()
    queue = pw.CharField(max_length=32)
    key = pw.CharField(max_length=255, default="")
    at = pw.DoubleField()

    class Meta:
        table_name = "queue_start"
        indexes = ((("queue", "key", "at"), False),)


class AuditEntry(BaseModel):
    """One operator action (engine/audit.py): who (OS user and host, the face,
    and a web token's name), what, on which jobs or settings, and when. Jobs
    are named up to a bound, with their count: a purge of a million is one row."""

    seq = pw.AutoField()
    at = pw.DoubleField(index=True)
    user = pw.CharField(max_length=64)
    host = pw.CharField(max_length=255)
    via = pw.CharField(max_length=16)  # cli, console, web
    token = pw.CharField(max_length=64, null=True)  # the web token's name
    action = pw.CharField(max_length=32)
    target = pw.TextField(null=True)  # a queue, a config key, a schedule, a worker...
    jobs = pw.IntegerField(default=0)
    job_ids = pw.TextField(null=True)  # space-separated, the first AUDIT_IDS of them
    detail = pw.TextField(null=True)

    class Meta:
        table_name = "audit"


class Setting(BaseModel):
    """A config value, stored as JSON text."""

    key = pw.CharField(max_length=64, primary_key=True)
    value = pw.TextField()


class Meta(BaseModel):
    """Bookkeeping that is not config: the schema version."""

    key = pw.CharField(max_length=64, primary_key=True)
    value = pw.TextField()


MODELS = (Job, Event, Attempt, Batch, StagedJob, NamedQueue, Dependency, UniqueLock, Schedule,
          HookRun, Worker, Start, AuditEntry, Setting, Meta)
