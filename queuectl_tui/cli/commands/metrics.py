"""`queuectl metrics` and the pool's `--metrics-port`: the queue in Prometheus format.

prometheus_client is imported only by these two (behind the engine's
`metrics_exposition` and `serve_metrics`): every other command starts without it.
"""

from __future__ import annotations

import argparse
import sys

from queuectl_tui.cli.args import host, port
from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import UsageError

DEFAULT_HOST = "127.0.0.1"  # the engine's metrics server binds this unless told otherwise


def add_parser(build: Builder) -> None:
    build.add("metrics", "print the queue's metrics in the Prometheus text format (what "
                         "`worker start --metrics-port` serves at /metrics)")


def run(args: argparse.Namespace) -> int:
    queue = open_queue(args, create=False)
    from queuectl_tui.engine import metrics_exposition  # prometheus_client: only here
    sys.stdout.write(metrics_exposition(queue))
    return 0


def add_worker_options(start: argparse.ArgumentParser) -> None:
    """`worker start --metrics-port PORT [--metrics-host HOST]` (and `service unit`'s)."""
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
    if args.metrics_host is not None and args.metrics_port is None:
        raise UsageError("--metrics-host goes with --metrics-port PORT")
