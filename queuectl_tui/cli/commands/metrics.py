"""`queuectl metrics`: the queue in the Prometheus text format.

prometheus_client is imported only here and by a pool started with
`--metrics-port` (cli/args.py): every other command starts without it.
"""

from __future__ import annotations

import argparse
import sys

from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.parser import Builder


def add_parser(build: Builder) -> None:
    build.add("metrics", "print the queue's metrics in the Prometheus text format (what "
                         "`worker start --metrics-port` serves at /metrics)")


def run(args: argparse.Namespace) -> int:
    queue = open_queue(args, create=False)
    from queuectl_tui.engine import metrics_exposition  # prometheus_client: only here
    sys.stdout.write(metrics_exposition(queue))
    return 0
