"""`queuectl web`: serve the console to a browser (docs/web.md).

textual-serve and aiohttp (the optional `queuectl[web]` extra) are imported
only here, after the options are checked: no other command loads them.
"""

from __future__ import annotations

import argparse

from queuectl_tui.cli.args import host, positive_int
from queuectl_tui.cli.parser import Builder
from queuectl_tui.errors import QueuectlError

MAX_PAGES = 256  # each open page is a console process (~60 MB)


def port_or_any(text: str) -> int:
    """A TCP port, or 0 for one the system chooses (the URL printed says which)."""
    body = text.strip()
    if not (body.isascii() and body.isdigit()) or len(body) > 5 or int(body) > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text[:40]!r}: a number from 0 "
                                         "(any free one) to 65535")
    return int(body)


def add_parser(build: Builder) -> None:
    command = build.add("web", "serve the console to a browser, one console per open page "
                               "(needs: pip install 'queuectl[web]')")
    command.add_argument("--host", type=host, default="127.0.0.1",
                         help="the address to bind (default 127.0.0.1: this host only; "
                              "anything else belongs behind a TLS reverse proxy)")
    command.add_argument("--port", type=port_or_any, default=8080,
                         help="the port (default 8080; 0: any free one)")
    command.add_argument("--token-file", metavar="FILE",
                         help="tokens, one a line as NAME:TOKEN (or a bare TOKEN), readable "
                              "by its owner only (default: one made up now and printed "
                              "once as a URL)")
    command.add_argument("--read-only", action="store_true",
                         help="every page's console is read-only (also QUEUECTL_READ_ONLY=1)")
    command.add_argument("--max-pages", type=lambda t: positive_int(t, MAX_PAGES), default=16,
                         metavar="N", help="at most N pages open at once (default 16)")


def run(args: argparse.Namespace) -> int:
    from queuectl_tui.console.read_only import from_environment  # no Textual in it
    from queuectl_tui.web.tokens import generate, read_token_file

    tokens = read_token_file(args.token_file) if args.token_file else generate()
    read_only = args.read_only or from_environment()
    try:
        from queuectl_tui.web.server import Settings, serve
    except ImportError as exc:
        raise QueuectlError(f"the web console needs textual-serve ({exc.name} is missing): "
                            "pip install 'queuectl[web]'") from None
    return serve(Settings(tokens=tokens, host=args.host, port=args.port, read_only=read_only,
                          db=getattr(args, "db", None), max_pages=args.max_pages))
