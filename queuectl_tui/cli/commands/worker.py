"""`queuectl worker start|stop|list`: the pools of worker processes."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from queuectl_tui.cli.args import (MAX_WORKERS, add_metrics_options, check_metrics_options,
                                   duration, metrics_options, positive_int, worker_count)
from queuectl_tui.cli.opening import open_queue, target_of
from queuectl_tui.engine import DEFAULT_GRACE_S
from queuectl_tui.cli.output import print_workers, reply, say
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import NoDatabase, QueuectlError, UsageError
from queuectl_tui.safe_text import printable

if TYPE_CHECKING:
    from queuectl_tui.engine import Queue


def add_parser(build: Builder) -> None:
    actions = build.actions(build.add("worker", "start, stop or list worker processes"))
    w = build.action(actions, "start", "run N worker processes (in the foreground unless "
                     "--detach)")
    w.add_argument("--count", type=worker_count, default=1, metavar="N",
                   help=f"worker processes in this pool, 1 to {MAX_WORKERS} (default 1)")
    w.add_argument("--detach", action="store_true",
                   help="run the pool in the background; return once its workers are ready")
    w.add_argument("--log", metavar="FILE",
                   help="with --detach: the pool's log (default: workers.log in the "
                        "database's logs folder)")
    w.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="the pool's log lines on stderr (or in --log): text for people "
                        "(default) or JSON Lines")
    w.add_argument("--quiet", action="store_true",
                   help="leave out the job lines (claimed, finished, rescued); keep the "
                        "worker and pool ones")
    w.add_argument("--queues", metavar="NAME[,NAME…]",
                   help="serve only these queues, earlier names first (default: every "
                        "queue, in one order by priority and due time)")
    w.add_argument("--capacity", metavar="cpu=N,mem=SIZE,gpu=IDS",
                   help="what this pool's jobs may use at once, e.g. cpu=4,mem=8G,gpu=0,1 "
                        "(default: detected: cores, memory, GPUs from nvidia-smi or "
                        "$QUEUECTL_GPUS); only jobs that state --cpus/--mem/--gpus count")
    add_metrics_options(w)
    w = build.action(actions, "stop", "ask the pools of this host (or --host, --pool, --all) "
                     "to finish their jobs and exit")
    w.add_argument("--host", metavar="HOST",
                   help="the pools of this host (default: this one, $QUEUECTL_HOSTNAME or "
                        "the host name)")
    w.add_argument("--pool", type=positive_int, metavar="PID",
                   help="only the pool whose supervisor has this pid (on this host or --host)")
    w.add_argument("--all", action="store_true", help="every pool on every host")
    w.add_argument("--now", action="store_true",
                   help="do not finish running jobs: SIGTERM them, SIGKILL after --grace, "
                        "and put them back in the queue (attempt not counted)")
    w.add_argument("--grace", type=duration, default=DEFAULT_GRACE_S, metavar="DURATION",
                   help=f"with --now: time between SIGTERM and SIGKILL (default "
                        f"{DEFAULT_GRACE_S:g}s)")
    w.add_argument("--wait", action="store_true", help="wait until they have exited")
    w.add_argument("--timeout", type=duration, default=60.0, metavar="DURATION",
                   help="how long --wait waits (default 60s)")
    w = build.action(actions, "list", "workers and what they are doing")
    w.add_argument("--all", action="store_true", help="include stopped workers")


def run(args: argparse.Namespace) -> int:
    if args.action == "start" and args.log and not args.detach:
        raise UsageError("--log goes with --detach (in the foreground the pool logs to stderr)")
    serving = None
    if args.action == "start" and args.queues is not None:
        from queuectl_tui.engine import parse_queue_names  # loads the engine: after parsing
        serving = parse_queue_names(args.queues)
    if args.action == "start":
        check_metrics_options(args)
        check_log_option(args)
        from queuectl_tui.workers.capacity import resolve  # detected on this host
        from queuectl_tui.workers.limits import check as memory_limits
        args.capacity_resolved = resolve(args.capacity)
        args.memory_limits = memory_limits()  # a forced mechanism that cannot work: refused
    try:
        queue = open_queue(args, create=args.action == "start", person=args.action != "start")
    except NoDatabase:
        if args.action != "stop":
            raise
        return no_pool_runs(args)  # nothing to stop; a cleanup script under `set -e` goes on
    if args.action == "start" and args.detach:
        return start_detached(queue, args, serving)
    if args.action == "start":
        return start(queue, args, serving)
    if args.action == "stop":
        return stop(queue, args)
    workers = queue.workers(include_stopped=args.all)
    reply(args, workers, lambda: print_workers_and_pools(workers, queue) if workers else
          print("no workers; start some with: queuectl worker start --count 2"))
    return 0


def print_workers_and_pools(workers: list[dict], queue: Queue) -> None:
    """The workers, then a line per live pool: its capacity, used and free."""
    from queuectl_tui.engine import format_size
    print_workers(workers)
    for pool in queue.pools():
        cap, used, free = pool["capacity"], pool["used"], pool["free"]
        if cap is None:
            continue
        print(f"pool {pool['pool']}: cpu {used['cpus']:g}/{cap['cpus']:g}, "
              f"mem {format_size(used['mem']) if used['mem'] else '0'}/{format_size(cap['mem'])}, "
              f"gpu {','.join(used['gpus']) or '-'} of {','.join(cap['gpus']) or 'none'} "
              f"(free: cpu {free['cpus']:g}, mem {format_size(free['mem'])}, "
              f"gpu {','.join(free['gpus']) or 'none'})")


def start(queue: Queue, args: argparse.Namespace, serving: list[str] | None) -> int:
    """A pool in the foreground, until it is stopped."""
    from queuectl_tui.workers.pool_log import PoolLog
    from queuectl_tui.workers.supervisor import Supervisor
    events = PoolLog(args.log_format, jobs=not args.quiet)
    metrics = None if args.metrics_port is None else (args.metrics_port, args.metrics_host)
    return Supervisor(queue, queue.opened.target, args.count, events=events,
                      queues=serving, metrics=metrics, capacity=args.capacity_resolved,
                      memory_limits=args.memory_limits).run()


def check_log_option(args: argparse.Namespace) -> None:
    """`--log FILE` goes in a folder that exists: a typo must not make folders."""
    if args.log is None:
        return
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(args.log)))
    if not os.path.isdir(folder):
        raise UsageError(f"--log {args.log}: no folder {folder}; create it first")


def pool_said(log: Path, start: int) -> str | None:
    """Why a detached pool stopped at start: its last error line in its log
    (a port in use, a bad --metrics-host, a database it cannot open)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(start)
            lines = fh.read()[-8192:].decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    lines = [line.strip() for line in lines if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    text = (errors or lines or [None])[-1]
    return None if text is None else printable(text.removeprefix("queuectl: error: "))[:300]


def no_pool_runs(args: argparse.Namespace) -> int:
    """`worker stop` where no database exists yet: no pool can run, so there
    is nothing to stop (exit 0), and nothing is created."""
    from queuectl_tui.engine import redact
    reply(args, {"asked": [], "still_running": [] if args.wait else None, "host": None,
                 "pool": args.pool, "others_running": 0},
          lambda: print(f"no pool runs on {redact(target_of(args))} "
                        "(no database yet): nothing to stop"))
    return 0


def start_detached(queue: Queue, args: argparse.Namespace, serving: list[str] | None) -> int:
    """A pool in the background: returns once its workers are ready, or says why not."""
    from queuectl_tui.workers.supervisor import log_options, spawn_detached, wait_until_ready
    log = Path(args.log).expanduser().absolute() if args.log else queue.opened.pool_log
    if not args.log:
        from queuectl_tui.engine import make_private_dir
        make_private_dir(log.parent)
    start_at = log.stat().st_size if log.exists() else 0  # this pool's lines come after
    try:
        proc = spawn_detached(queue.opened.target, args.count, log,
                              log_options(args.log_format == "json", args.quiet, serving)
                              + metrics_options(args)
                              + (["--capacity", args.capacity] if args.capacity else []))
    except OSError as exc:
        raise UsageError(f"cannot write the pool's log {log}: {exc.strerror}") from None
    try:
        pids = wait_until_ready(queue, proc, args.count)
    except QueuectlError as exc:
        reason = pool_said(log, start_at)
        raise QueuectlError(f"{exc}" + (f": {reason}" if reason else "")
                            + f" (its log: {log})") from None
    reply(args, {"supervisor_pid": proc.pid, "worker_pids": pids, "log": str(log)},
          f"started a pool of {len(pids)} worker(s) in the background: supervisor pid "
          f"{proc.pid}, worker pids {', '.join(map(str, pids))}\n"
          f"log: {log}; stop it with: queuectl worker stop")
    return 0


def stop(queue: Queue, args: argparse.Namespace) -> int:
    """Stop the pools of this host by default: on a shared PostgreSQL database,
    `worker stop` typed on one host must not stop every other host's pools
    (`--all` does, on purpose). A pool stopped this way exits 0, so a service
    unit's `Restart=on-failure` leaves it stopped, as asked."""
    if args.all and (args.host is not None or args.pool is not None):
        raise UsageError("--all stops every pool on every host: give it without --host "
                         "and --pool")
    host = None if args.all else (args.host or queue.host)
    ids = queue.stop_workers(now_grace=args.grace if args.now else None, host=host,
                             pool=args.pool)
    others = [w for w in queue.live_workers() if w["id"] not in ids]
    remaining = ids
    if args.wait and ids:
        deadline = time.monotonic() + args.timeout
        while remaining and time.monotonic() < deadline:
            time.sleep(0.1)
            live = {w["id"] for w in queue.live_workers()}
            remaining = [i for i in ids if i in live]
    reply(args, {"asked": ids, "still_running": remaining if args.wait else None,
                 "host": host, "pool": args.pool, "others_running": len(others)},
          lambda: say_stopped(args, host, ids, remaining, others))
    return 1 if args.wait and remaining else 0


def say_stopped(args: argparse.Namespace, host: str | None, ids: list[str],
                remaining: list[str], others: list[dict]) -> None:
    """What `worker stop` did, for people; the pools it left running on stderr."""
    where = ("" if host is None else f" on host {host}"
             + ("" if args.pool is None else f" in pool {args.pool}"))
    if others:
        hosts = sorted({w["host"] for w in others})
        say(f"{len(others)} other worker(s) keep running (host {', '.join(hosts)}); "
            "`queuectl worker stop --all` stops every pool on every host")
    if not ids:
        print(f"no live workers{where}")
    elif args.wait and remaining:
        print(f"asked {len(ids)} worker(s) to stop; {len(remaining)} still running after "
              f"{args.timeout:g} s")
    else:
        how = (f"now (running jobs get SIGTERM, SIGKILL after {args.grace:g} s, and go back "
               "to the queue)" if args.now else "after their current job")
        print(f"asked {len(ids)} worker(s){where} to stop {how}"
              + ("; all stopped" if args.wait else ""))
