"""Errors the faces turn into one-line messages and exit codes.

Every error a user can cause is a `QueuectlError` carrying its exit code, so the
CLI never has to guess and never prints a traceback for bad input.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # anything unexpected
EXIT_USAGE = 2  # bad arguments, bad JSON, invalid values
EXIT_NOT_FOUND = 3  # no job / key with that id
EXIT_CONFLICT = 4  # the job is in a state that does not allow the action
EXIT_DATABASE = 5  # the database cannot be opened, is locked, damaged or read-only
EXIT_JOB_FAILED = 6  # `wait`, `logs --follow`: a job ended dead or cancelled
EXIT_TIMEOUT = 7  # `wait --timeout`: time ran out before every job finished
EXIT_NO_RESULT = 8  # `result ID`: the job has stored no result


class QueuectlError(Exception):
    """Base class: a message meant for the user and the exit code that goes with it."""

    exit_code = EXIT_FAILURE


class UsageError(QueuectlError):
    exit_code = EXIT_USAGE


class NotFound(QueuectlError):
    exit_code = EXIT_NOT_FOUND


class Conflict(QueuectlError):
    exit_code = EXIT_CONFLICT


class NoResult(QueuectlError):
    exit_code = EXIT_NO_RESULT


class DatabaseError(QueuectlError):
    exit_code = EXIT_DATABASE


class NoDatabase(DatabaseError):
    """A command that only reads met a database that does not exist yet: some
    (`worker stop`, `config get`) have a true answer without one."""
