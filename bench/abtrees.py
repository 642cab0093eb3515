"""What the black-box benches share: which checkouts to measure, and an
environment that runs them as an installed package would run.

`--tree NAME=PATH` (repeatable) names checkouts to compare; their runs are
interleaved by the benches, so every tree sees the same load on a shared
machine. Without it, the checkout the bench lives in is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def add_tree_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="a checkout to measure (default: this one); repeat for A/B")


def trees(args: argparse.Namespace) -> dict[str, Path]:
    named = dict(t.split("=", 1) for t in args.tree) or {"this": str(ROOT)}
    return {name: Path(path).resolve() for name, path in named.items()}


SHARED_PYCACHE = Path(tempfile.gettempdir()) / "queuectl-bench-pycache"


def cached_pyc_env(pycache: Path = SHARED_PYCACHE) -> dict[str, str]:
    """os.environ with `.pyc` files cached under `pycache`: the sandbox sets
    PYTHONDONTWRITEBYTECODE, which would make every process recompile queuectl,
    as no installed package does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def write_result(path: Path | None, result: dict[str, Any]) -> None:
    result["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
