"""Opening the queue a command works on, and turning what goes wrong into one
line on stderr and an exit code (the one place that does either).

The engine is imported only once the command line is parsed and the driver it
will not need is skipped: a command on a SQLite file never loads the
PostgreSQL driver, which Peewee imports (with ssl) if it can.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import TYPE_CHECKING, Callable

from queuectl_tui.cli.output import say
from queuectl_tui.engine import resolve_target, skip_postgres_driver
from queuectl_tui.errors import EXIT_DATABASE, EXIT_FAILURE, QueuectlError

if TYPE_CHECKING:
    from queuectl_tui.engine import Queue

WORKER_LOOK_S = 5.0  # how often `wait` and `logs -f` look whether any worker is alive
NO_WORKER = ("queuectl: no worker is running on this database: start one with "
             "`queuectl worker start` (or `worker start --detach`)")


def target_of(args: argparse.Namespace) -> str:
    """The database the command line names (`--db`, else $QUEUECTL_DB, else the default)."""
    return resolve_target(getattr(args, "db", None))


def skip_unneeded_driver(args: argparse.Namespace) -> None:
    """Before anything imports the engine's storage: 15-30 ms that a command on
    a SQLite file would otherwise pay for the PostgreSQL driver."""
    skip_postgres_driver(target_of(args))


def open_queue(args: argparse.Namespace, *, create: bool = True,
               person: bool = True) -> Queue:
    """The queue the command works on. Commands that only read pass
    `create=False`: a mistyped path is an error, not a new empty database.
    What it changes is a person's action, in the audit trail, unless
    `person=False` (a pool: its own work is not an operator's)."""
    skip_unneeded_driver(args)
    from queuectl_tui.engine import Queue, open_database  # after the driver is skipped
    from queuectl_tui.workers.signals import LocalProcesses
    queue = Queue(open_database(getattr(args, "db", None), create=create),
                  processes=LocalProcesses())
    if person:
        queue.act_as("cli")
    return queue


def say_if_no_worker(queue: Queue) -> bool:
    """Say on stderr (never in --json's stdout) that nothing will run the jobs
    until a pool starts; returns whether it was said."""
    if queue.any_worker_alive():
        return False
    say(NO_WORKER)
    return True


def run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; its errors become a line on stderr and their exit code."""
    try:
        return handler(args)
    except QueuectlError as exc:
        say(f"queuectl: error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `queuectl list | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # database driver errors, disk full, ...
        return unexpected(exc, args)


def unexpected(exc: Exception, args: argparse.Namespace) -> int:
    """An error no command expected: a database's (exit 5), the system's, or a bug."""
    from queuectl_tui.engine import describe_db_error, is_storage_error
    if is_storage_error(exc):
        say(f"queuectl: error: {describe_db_error(exc, target_of(args))}")
        return EXIT_DATABASE
    if isinstance(exc, OSError):
        say(f"queuectl: error: {exc.strerror or exc} ({exc.filename or socket.gethostname()})")
        return EXIT_FAILURE
    say(f"queuectl: internal error: {exc.__class__.__name__}: {exc} "
        "(please report this with the command you ran)")
    return EXIT_FAILURE
