"""`queuectl config get|set|list|show`: read and change settings."""

from __future__ import annotations

import argparse

from queuectl_tui.cli.opening import open_queue
from queuectl_tui.cli.output import reply, say, table
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import NoDatabase


def add_parser(build: Builder) -> None:
    actions = build.actions(build.add("config", "read and change settings"))
    c = build.action(actions, "get", "one value (every key when none is given)")
    c.add_argument("key", nargs="?")
    c = build.action(actions, "set", "validate and store a value")
    c.add_argument("key")
    c.add_argument("value")
    build.action(actions, "list", "every key with its value")
    build.action(actions, "show", "every key with its value (same as list)")


def run(args: argparse.Namespace) -> int:
    from queuectl_tui.engine import (CONFIG_KEYS, check_config, config_defaults,  # after parsing
                                     config_key)
    if args.action == "get" and args.key is None:
        args.action = "list"  # `config get` alone: every setting, as other queues do
    if args.action in ("get", "set"):
        key = config_key(args.key)
        if args.action == "set":
            check_config(key, args.value)  # bad input fails before the database is opened
    try:
        queue = open_queue(args, create=args.action == "set")
    except NoDatabase as exc:
        queue = None  # no database yet: every key has its default, which is the truth
        say(f"queuectl: {exc}; until then every key has its default")
    if args.action in ("list", "show"):
        values = queue.config_all() if queue else config_defaults()
        reply(args, values, lambda: table(
            [(k, v, CONFIG_KEYS[k].help) for k, v in values.items()], ["KEY", "VALUE", "MEANING"]))
        return 0
    value = (queue.config_set(key, args.value) if args.action == "set"
             else queue.config_get(key) if queue else CONFIG_KEYS[key].default)
    reply(args, {"key": key, "value": value}, value)
    return 0
