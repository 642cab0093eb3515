"""`queuectl metrics` and the pool's `--metrics-port`: the queue in Prometheus format.

prometheus_client is imported only by these two (engine/metrics.py): every
other headless command starts without it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

DEFAULT_HOST = "127.0.0.1"  # engine/metrics.py binds this unless told otherwise


def port(text: str) -> int:
    """A TCP port, 1-65535 (argparse's type: a bad one is a one-line usage error)."""
    body = text.strip()
    if not (body.isascii() and body.isdigit()) or len(body) > 5 or not 1 <= int(body) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text[:40]!r}: a number from 1 to 65535")
    return int(body)


def host(text: str) -> str:
    body = text.strip()
    if not body or len(body) > 255 or any(c.isspace() or not c.isprintable() for c in body):
        raise argparse.ArgumentTypeError(f"invalid host {text[:40]!r}: an address or a name "
                                         "to bind, e.g. 127.0.0.1, 0.0.0.0 or ::")
    return body


def add_worker_options(start: argparse.ArgumentParser) -> None:
    """`worker start --metrics-port PORT [--metrics-host HOST]`."""
    start.add_argument("--metrics-port", type=port, metavar="PORT",
                       help="serve Prometheus metrics at http://HOST:PORT/metrics from the "
                            "pool's supervisor (default: off)")
    start.add_argument("--metrics-host", type=host, metavar="HOST",
                       help=f"the address --metrics-port binds (default {DEFAULT_HOST}: this "
                            "host only; 0.0.0.0 for every interface)")


def worker_options(args: argparse.Namespace) -> list[str]:
    """The same options for a detached pool."""
    if args.metrics_port is None:
        return []
    return ["--metrics-port", str(args.metrics_port)] + (
        ["--metrics-host", args.metrics_host] if args.metrics_host else [])


def check_worker_options(args: argparse.Namespace) -> None:
    from queuectl_tui.errors import UsageError
    if args.metrics_host is not None and args.metrics_port is None:
        raise UsageError("--metrics-host goes with --metrics-port PORT")


def add_parser(add: Callable[..., argparse.ArgumentParser], as_json: Any = None) -> None:
    """The `metrics` command, added to the CLI's parser by cli.py."""
    add("metrics", "print the queue's metrics in the Prometheus text format (what "
                   "`worker start --metrics-port` serves at /metrics)")


def cmd_metrics(args: argparse.Namespace, open_queue: Callable[..., Any]) -> int:
    queue = open_queue(args, create=False)
    from queuectl_tui.engine.metrics import exposition
    sys.stdout.write(exposition(queue))
    return 0
