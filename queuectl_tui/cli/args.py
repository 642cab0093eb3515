"""Argument types of the headless commands: each turns one word of the command
line into a value, or refuses it with a one-line usage error (exit 2). And the
options more than one command takes: `--env`, and a pool's `--metrics-port`
(`worker start`, `service unit`).

Nothing here opens a database; the engine checks ranges it owns and says so.
"""

from __future__ import annotations

import argparse

from queuectl_tui.errors import UsageError

MAX_LIMIT = 1_000_000_000
MAX_WORKERS = 64  # per pool: each worker is an interpreter (~25 MB); more pools for more
DEFAULT_METRICS_HOST = "127.0.0.1"  # the engine's metrics server binds this unless told


def duration(text: str) -> float:
    """argparse's face of the engine's duration parser: '90', '10s', '5m', '2h', '1d'."""
    from queuectl_tui.engine import parse_duration  # only when a duration is given
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def whole_number(text: str) -> int:
    """Any ASCII whole number (the engine checks the range and says it)."""
    body = text.strip()
    if not (body.lstrip("+-").isascii() and body.lstrip("+-").isdigit()) or len(body) > 30:
        raise argparse.ArgumentTypeError(f"invalid whole number {text[:40]!r}")
    return int(body)


def positive_int(text: str, most: int = MAX_LIMIT) -> int:
    """A whole number from 1 to `most` (a billion: more rows than anyone lists)."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    if value > most:
        raise argparse.ArgumentTypeError(f"must be at most {most:,}, got {text.strip()[:40]}")
    return value


def worker_count(text: str) -> int:
    """1 to MAX_WORKERS: each worker is a process; more pools for more."""
    return positive_int(text, MAX_WORKERS)


def port(text: str) -> int:
    """A TCP port, 1-65535 (argparse's type: a bad one is a one-line usage error)."""
    body = text.strip()
    if not (body.isascii() and body.isdigit()) or len(body) > 5 or not 1 <= int(body) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text[:40]!r}: a number from 1 to 65535")
    return int(body)


def host(text: str) -> str:
    """An address or a name to bind: printable, no spaces."""
    body = text.strip()
    if not body or len(body) > 255 or any(c.isspace() or not c.isprintable() for c in body):
        raise argparse.ArgumentTypeError(f"invalid host {text[:40]!r}: an address or a name "
                                         "to bind, e.g. 127.0.0.1, 0.0.0.0 or ::")
    return body


def env_option(pairs: list[str]) -> dict[str, str]:
    """The repeated `--env KEY=VALUE` of `enqueue` and `schedule add`, as a mapping."""
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--env takes KEY=VALUE, got {pair!r}")
        env[name] = value
    return env


def add_metrics_options(start: argparse.ArgumentParser) -> None:
    """`worker start --metrics-port PORT [--metrics-host HOST]` (and `service unit`'s)."""
    start.add_argument("--metrics-port", type=port, metavar="PORT",
                       help="serve Prometheus metrics at http://HOST:PORT/metrics from the "
                            "pool's supervisor (default: off)")
    start.add_argument("--metrics-host", type=host, metavar="HOST",
                       help=f"the address --metrics-port binds (default "
                            f"{DEFAULT_METRICS_HOST}: this host only; 0.0.0.0 for every "
                            "interface)")


def metrics_options(args: argparse.Namespace) -> list[str]:
    """The same options on the command line of a detached pool or a service's pool."""
    if args.metrics_port is None:
        return []
    return ["--metrics-port", str(args.metrics_port)] + (
        ["--metrics-host", args.metrics_host] if args.metrics_host else [])


def check_metrics_options(args: argparse.Namespace) -> None:
    """A host to bind means nothing without a port to serve."""
    if args.metrics_host is not None and args.metrics_port is None:
        raise UsageError("--metrics-host goes with --metrics-port PORT")

