"""`queuectl service unit`: a systemd unit that runs a worker pool as a service.

The unit runs `worker start` in the foreground (systemd is the supervisor's
supervisor), on the database this command resolves (`--db`, `$QUEUECTL_DB`,
the default path), made absolute so the service finds the same file whatever
its working directory. Its stop is the pool's graceful stop: SIGTERM to the
supervisor only (`KillMode=mixed`), which lets every running job finish, so the
stop timeout must outlast the longest job timeout.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path

from queuectl_tui.cli.args import (add_metrics_options, check_metrics_options, duration,
                                   metrics_options, worker_count)
from queuectl_tui.cli.opening import open_queue, target_of
from queuectl_tui.cli.output import say
from queuectl_tui.cli.parser import Builder
from queuectl_tui.engine import is_postgres_url, redact, secrets_of
from queuectl_tui.errors import DatabaseError, UsageError

POOL_USER = "queuectl"  # a system unit printed by root runs its pool as this user
UNIT_NAME = "queuectl-worker"
STOP_MARGIN_S = 60  # after the longest job timeout: the runner's SIGKILL grace, recording, exit
NO_TIMEOUT_STOP_S = 600  # when no job has a timeout, how long a stop waits for running jobs
_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


def add_parser(build: Builder) -> None:
    ssub = build.actions(build.add("service", "run the worker pool under systemd"))
    u = ssub.add_parser(
        "unit", help="print a systemd unit that runs a worker pool on this database",
        description="Print a systemd unit (on stdout) that runs `queuectl worker start` in "
                    "the foreground on this database, restarts it on failure, stops it "
                    "gracefully and logs to the journal. Install it with: queuectl service "
                    f"unit --user > ~/.config/systemd/user/{UNIT_NAME}.service",
        parents=[build.common])
    u.add_argument("--user", action="store_true",
                   help="a user unit (systemctl --user); default: a system unit that runs "
                        "as you, or (printed by root) as the dedicated user `queuectl`")
    u.add_argument("--run-as", metavar="USER",
                   help="the user a system unit's pool and jobs run as (default: you; "
                        f"`{POOL_USER}` when printed by root, never root unless named)")
    u.add_argument("--count", type=worker_count, default=1, metavar="N",
                   help="worker processes in the pool (default 1)")
    u.add_argument("--queues", metavar="NAME[,NAME…]",
                   help="passed on to `worker start --queues`")
    u.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="passed on to `worker start --log-format`")
    u.add_argument("--quiet", action="store_true", help="passed on to `worker start --quiet`")
    u.add_argument("--stop-timeout", type=duration, metavar="DURATION",
                   help="how long a stop may wait for running jobs (default: the longest job "
                        f"timeout plus {STOP_MARGIN_S} s)")
    add_metrics_options(u)


def run(args: argparse.Namespace) -> int:
    """Print the unit on stdout; say on stderr what was chosen and why."""
    target = target_of(args)
    if not is_postgres_url(target):
        target = str(Path(target).expanduser().absolute())
    if args.queues is not None:
        check_queues(args.queues)
    check_metrics_options(args)
    stop_s, why = stop_timeout(args, target)  # a database that is not one fails here first
    run_as = None if args.user else _run_as(args.run_as)
    secret = _password(target)
    env_file = (f"%h/.config/queuectl/{UNIT_NAME}.env" if args.user
                else f"/etc/queuectl/{UNIT_NAME}.env")
    sys.stdout.write(render_unit(
        target=None if secret else target, env_file=env_file if secret else None,
        user=args.user, run_as=run_as, count=args.count, queues=args.queues, stop_s=stop_s, why=why,
        options=(["--log-format", "json"] if args.log_format == "json" else [])
        + (["--quiet"] if args.quiet else []) + metrics_options(args),
        network=is_postgres_url(target)))
    say(f"queuectl: TimeoutStopSec={stop_s}: {why}")
    if secret:
        where = env_file.replace("%h", "~")
        say(f"queuectl: the database URL carries a password, so it is not written into the "
            f"unit (unit files and `systemctl show` are readable by every user): put the line "
            f"QUEUECTL_DB={redact(target)} (with the real password) in {where}, mode 0600")
    return 0


def _run_as(named: str | None) -> str:
    """Whom a system unit runs the pool as: whoever can enqueue can run any
    command as this user, so it is never root unless asked for by name."""
    if named is not None:
        if not named.strip() or any(c.isspace() or c in "\"'$%" for c in named):
            raise UsageError(f"--run-as takes a user name, got {named!r}")
        if named == "root":
            say("queuectl: warning: the pool runs as root: every job anyone enqueues "
                "runs as root (docs/security.md)")
        return named
    if os.geteuid() == 0:
        say(f"queuectl: the unit runs the pool as the dedicated user {POOL_USER} (jobs "
            f"must not run as root); create it first: useradd --system --create-home "
            f"{POOL_USER}, or choose one with --run-as")
        return POOL_USER
    import getpass  # only here: not every command should pay for it
    return getpass.getuser()


def check_queues(text: str) -> None:
    """The engine's own rules, so the unit never carries a list `worker start` refuses."""
    from queuectl_tui.engine import parse_queue_names  # loads the engine: after parsing
    parse_queue_names(text)


def stop_timeout(args: argparse.Namespace, target: str) -> tuple[int, str]:
    """TimeoutStopSec and the reason for it (said on stderr and in the unit)."""
    if args.stop_timeout is not None:
        return max(1, math.ceil(args.stop_timeout)), "as given (--stop-timeout)"
    setting, largest = _read_timeouts(args)
    if setting is None and largest is None:
        return NO_TIMEOUT_STOP_S, (
            "no job timeout is set (config job-timeout is 0 and no waiting or running job has "
            f"one), so a stop waits {NO_TIMEOUT_STOP_S // 60} minutes for running jobs; one "
            "still running then is killed with the pool and rescued when it starts again "
            "(counted as an attempt); set job-timeout or pass --stop-timeout to choose")
    longest = max(t for t in (setting, largest) if t is not None)
    source = ("the job-timeout setting" if setting == longest
              else "the longest timeout of a waiting or running job")
    return math.ceil(longest) + STOP_MARGIN_S, (
        f"{_human(longest)} ({source}) plus {STOP_MARGIN_S} s, so a graceful stop lets "
        "every running job finish or time out")


def _read_timeouts(args: argparse.Namespace) -> tuple[float | None, float | None]:
    """The timeouts in the database; none yet if it does not exist yet (the
    pool creates it when the service starts)."""
    try:
        queue = open_queue(args, create=False)
    except DatabaseError as exc:
        from queuectl_tui.engine import CREATE_HINT
        if CREATE_HINT in str(exc):  # the marker of "no queue here yet"
            return None, None
        raise
    from queuectl_tui.engine import known_timeouts
    try:
        return known_timeouts()
    finally:
        queue.opened.close()


def render_unit(*, target: str | None, env_file: str | None, user: bool,
                run_as: str | None, count: int,
                queues: str | None, stop_s: int, why: str, options: list[str],
                network: bool) -> str:
    """The unit's text. `target` None: the database comes from `env_file`."""
    command = [*_queuectl_command(), "worker", "start", "--count", str(count),
               *(["--queues", queues] if queues else []), *options]
    where = "the database in " + env_file if target is None else target
    lines = [
        f"# A queuectl worker pool, printed by `queuectl service unit{' --user' if user else ''}`.",
        f"# Install: queuectl service unit{' --user' if user else ''} > "
        + (f"~/.config/systemd/user/{UNIT_NAME}.service" if user
           else f"/etc/systemd/system/{UNIT_NAME}.service"),
        f"#          systemctl{' --user' if user else ''} daemon-reload && "
        f"systemctl{' --user' if user else ''} enable --now {UNIT_NAME}",
        "[Unit]",
        f"Description=queuectl worker pool ({count} worker{'s' if count != 1 else ''}) on "
        + _escape_specifiers(where.replace("\n", " ")),
    ]
    if network and not user:  # user managers have no network-online.target
        lines += ["Wants=network-online.target", "After=network-online.target"]
    lines += [
        "",
        "[Service]",
        "Type=exec",
        "ExecStart=" + " ".join(_exec_word(word) for word in command),
        _environment("QUEUECTL_DB", target) if target is not None
        else f"EnvironmentFile={env_file}",  # ours: its %h is meant
        "# The PATH of the shell that printed this unit: jobs find the commands they found there.",
        _environment("PATH", os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")),
        "WorkingDirectory=~",
    ]
    if run_as is not None:
        lines += ["# Jobs run as this user, with its rights: never root (docs/security.md).",
                  f"User={run_as}"]
    lines += [
        "Restart=on-failure",
        "RestartSec=5s",
        "# SIGTERM to the supervisor only: it asks each worker to finish its running job,",
        "# and SIGKILL reaches everything left only when the stop timeout runs out.",
        "KillSignal=SIGTERM",
        "KillMode=mixed",
        f"# {why}",
        f"TimeoutStopSec={stop_s}",
        "StandardOutput=journal",
        "StandardError=journal",
        f"SyslogIdentifier={UNIT_NAME}",
        "",
        "[Install]",
        f"WantedBy={'default.target' if user else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)


def _queuectl_command() -> list[str]:
    """The installed `queuectl` script beside this interpreter, else `python -m`."""
    script = Path(sys.executable).with_name("queuectl")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "queuectl_tui"]


def _human(seconds: float) -> str:
    """A timeout as people write it: 2h, 5m, 90s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _password(target: str) -> bool:
    """Whether the URL carries a secret in any form (user:pass@, password=,
    sslpassword=): then it goes into the EnvironmentFile, not the unit."""
    return bool(secrets_of(target))


def _escape_specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _exec_word(word: str) -> str:
    """One ExecStart word: systemd expands %-specifiers and $VARIABLES in
    ExecStart, and splits on spaces unless the word is double-quoted."""
    word = _escape_specifiers(word).replace("$", "$$")
    if _PLAIN.fullmatch(word.replace("%%", "").replace("$$", "")):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _environment(name: str, value: str) -> str:
    """An Environment= line: the whole assignment double-quoted (a path may hold
    spaces), specifiers escaped; systemd does not expand $ there."""
    if any(ch in value for ch in "\n\r"):
        raise UsageError(f"{name} holds a line break; it cannot go into a unit file")
    body = _escape_specifiers(f"{name}={value}").replace("\\", "\\\\").replace('"', '\\"')
    return f'Environment="{body}"'
