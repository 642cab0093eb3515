"""The aiohttp application behind `queuectl web`: the page, its console, the gate.

textual-serve provides the page (its template, xterm.js and fonts) and
`AppService`, which runs one process per websocket and relays its terminal
both ways. It has no authentication and builds its URLs from the address it
binds; what it lacks is here:

- every request needs a session cookie, got by opening `/?token=…` once: the
  token is checked (constant time), an HttpOnly, SameSite=Strict cookie is
  set, and a tiny page moves the browser to the same URL without the token
  (a page rather than a 302: a SameSite=Strict cookie is not sent on a
  redirect that follows a link from another site, a chat message say).
  Anything else, static files and the websocket included, gets a bare 403;
- the websocket also checks that the page asking is this server's (Origin),
  as Jupyter does, and at most `max_pages` consoles run at once;
- each page's console is `queuectl tui` with who opened it and whether it is
  read-only in its environment; it ends when the page closes, and is killed
  if it has not ended STOP_WAIT_S after being asked;
- no access log (it would record `?token=`), and every line this process logs
  has the tokens scrubbed out; the page's URLs come from the request (the
  Host a proxy passes on, and X-Forwarded-Proto), so a TLS proxy in front works.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import secrets
import shlex
import signal
import socket
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
import textual_serve
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from queuectl_tui.errors import QueuectlError
from queuectl_tui.web.tokens import Tokens

log = logging.getLogger("queuectl.web")
ASSETS = Path(textual_serve.__file__).resolve().parent
STOP_WAIT_S = 5.0  # a console asked to quit and still running after this is killed
MAX_SESSIONS = 10_000  # signed-in browsers remembered (the oldest are forgotten)
REFUSAL_LOG_EVERY_S = 5.0
HEADERS = {"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Content-Security-Policy": "frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Settings:
    tokens: Tokens
    host: str = "127.0.0.1"
    port: int = 8080
    read_only: bool = False
    db: str | None = None  # --db as given; None: the console's own default
    max_pages: int = 16


def is_loopback(host: str) -> bool:
    return host == "localhost" or host.startswith("127.") or host == "::1"


def page_environment(settings: Settings, name: str) -> dict[str, str]:
    """What a page's console learns from its environment (never its argv)."""
    extra = {"QUEUECTL_ACTOR": f"web:{name}"}
    if settings.read_only:
        extra["QUEUECTL_READ_ONLY"] = "1"
    if settings.db is not None:
        extra["QUEUECTL_DB"] = settings.db
    return extra


class PageConsole(AppService):
    """One page's console process: textual-serve's, with our environment."""

    def __init__(self, command: str, extra_env: dict[str, str], **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.extra_env = extra_env

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width=width, height=height)
        environment.update(self.extra_env)
        return environment

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def end(self) -> None:
        """Ask it to quit (as closing the page does); kill it if it will not."""
        process = self._process
        try:
            await asyncio.wait_for(asyncio.shield(self.stop()), STOP_WAIT_S)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), 0.5)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()


class Scrub(logging.Filter):
    """Tokens never reach a log line, whoever logs it (aiohttp, textual-serve)."""

    QUERY = re.compile(r"([?&]token=)[^&\s\"']*")

    def __init__(self, secrets_: list[str]) -> None:
        super().__init__()
        self.secrets = secrets_

    def filter(self, record: logging.LogRecord) -> bool:
        text = self.QUERY.sub(r"\1[hidden]", record.getMessage())
        for secret in self.secrets:
            text = text.replace(secret, "[hidden]")
        record.msg, record.args = text, None
        if record.exc_info:  # a traceback's text is the message's too
            record.exc_text = self.QUERY.sub(
                r"\1[hidden]", logging.Formatter().formatException(record.exc_info))
            for secret in self.secrets:
                record.exc_text = record.exc_text.replace(secret, "[hidden]")
            record.exc_info = None
        return True


class WebConsole:
    """The application: routes, the gate, the open pages."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cookie = f"queuectl_web_{settings.port}"  # set again once bound (--port 0)
        self.sessions: OrderedDict[str, str] = OrderedDict()  # cookie value -> token name
        self.pages: set[web.WebSocketResponse] = set()
        self.downloads = DownloadManager()
        self.command = "exec " + shlex.join([sys.executable, "-m", "queuectl_tui", "tui"])
        template = (ASSETS / "templates" / "app_index.html").read_text(encoding="utf-8")
        # The only asset from elsewhere (a Google Fonts stylesheet): the fonts are
        # served from here, and a team's console should not call out.
        template = re.sub(r"<link[^>]*fonts\.googleapis\.com[^>]*>", "", template,
                          flags=re.S)
        self.template = jinja2.Environment(autoescape=True).from_string(template)
        self._refused = 0
        self._refused_logged = 0.0

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self.gate])
        app.add_routes([
            web.get("/", self.index),
            web.get("/ws", self.page),
            web.get("/download/{key}", self.download),
            web.static("/static", ASSETS / "static"),
        ])
        app.on_response_prepare.append(self.headers)
        app.on_shutdown.append(self.close_pages)
        return app

    # ------------------------------------------------------------ the gate

    @web.middleware
    async def gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        offered = request.query.get("token")
        if offered is not None:
            name = self.settings.tokens.match(offered) if request.path == "/" else None
            if name is None:
                return self.refuse(request, "a wrong token")
            return self.sign_in(request, name)
        name = self.sessions.get(request.cookies.get(self.cookie, ""))
        if name is None:
            return self.refuse(request, "no token")
        request["actor"] = name
        return await handler(request)

    def sign_in(self, request: web.Request, name: str) -> web.Response:
        """A session cookie, then the same page without the token in its URL."""
        session = secrets.token_urlsafe(32)
        self.sessions[session] = name
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        rest = [(k, v) for k, v in request.query.items() if k != "token"]
        target = "/" + ("?" + urlencode(rest) if rest else "")
        body = (f'<!doctype html><meta http-equiv="refresh" content="0;url={html.escape(target)}">'
                f"<script>location.replace({json.dumps(target)})</script>"
                f'<a href="{html.escape(target)}">queuectl</a>\n')
        response = web.Response(text=body, content_type="text/html")
        response.set_cookie(self.cookie, session, httponly=True, samesite="Strict",
                            secure=self.scheme(request) == "https", path="/")
        log.info("signed in as %s from %s", name, request.remote)
        return response

    def refuse(self, request: web.Request, why: str) -> web.Response:
        """403 and nothing else; logged at most every few seconds (a scan would
        fill the log), without the query string."""
        self._refused += 1
        now = time.monotonic()
        if now - self._refused_logged >= REFUSAL_LOG_EVERY_S:
            log.warning("refused %s %s from %s: %s (%d refused since the last line)",
                        request.method, request.path, request.remote, why, self._refused)
            self._refused, self._refused_logged = 0, now
        return web.Response(status=403, text="403: forbidden\n")

    async def headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        if request.path.startswith("/static/") and response.status == 200:
            response.headers["Cache-Control"] = "private, max-age=3600"  # 500 KB of JS

    # ------------------------------------------------------------ the page

    @staticmethod
    def scheme(request: web.Request) -> str:
        """https behind a TLS proxy that says so (X-Forwarded-Proto), else as asked."""
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return forwarded if forwarded in ("http", "https") else request.scheme

    async def index(self, request: web.Request) -> web.Response:
        scheme, host = self.scheme(request), request.host
        font_size = bounded(request.query.get("fontsize"), 16, 8, 48)
        title = "queuectl" + (" (read-only)" if self.settings.read_only else "")
        page = self.template.render(
            font_size=font_size, ping_url="",
            app_websocket_url=f"{'wss' if scheme == 'https' else 'ws'}://{host}/ws",
            config={"static": {"url": f"{scheme}://{host}/static/"}},
            application={"name": title})
        return web.Response(text=page, content_type="text/html")

    async def page(self, request: web.Request) -> web.StreamResponse:
        """One open page: its console process, relayed both ways until either ends."""
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
            return self.refuse(request, f"a page from another site ({origin[:80]})")
        if len(self.pages) >= self.settings.max_pages:
            log.warning("refused a page for %s: %d pages are open (--max-pages)",
                        request["actor"], len(self.pages))
            return web.Response(status=503, text="503: too many open pages\n")
        name = request["actor"]
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=1 << 20)
        await websocket.prepare(request)
        console = PageConsole(self.command, page_environment(self.settings, name),
                              write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                              close=websocket.close, download_manager=self.downloads)
        self.pages.add(websocket)
        try:
            await console.start(bounded(request.query.get("width"), 80, 10, 1000),
                                bounded(request.query.get("height"), 24, 5, 500))
            log.info("page opened by %s: console pid %s (%d open)", name, console.pid,
                     len(self.pages))
            await relay(websocket, console)
        except asyncio.CancelledError:
            pass
        finally:
            self.pages.discard(websocket)
            await console.end()
            await websocket.close()
            log.info("page closed by %s: console pid %s ended (%d open)", name, console.pid,
                     len(self.pages))
        return websocket

    async def download(self, request: web.Request) -> web.StreamResponse:
        """A file the console hands the browser (the palette's screenshot)."""
        key = request.match_info["key"]
        try:
            meta = await self.downloads.get_download_metadata(key)
        except KeyError:
            raise web.HTTPNotFound(text="no such download\n") from None
        response = web.StreamResponse()
        response.content_type = meta.mime_type
        if meta.encoding:
            response.charset = meta.encoding
        how = "inline" if meta.open_method == "browser" else "attachment"
        response.headers["Content-Disposition"] = f'{how}; filename="{meta.file_name}"'
        await response.prepare(request)
        async for chunk in self.downloads.download(key):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def close_pages(self, app: web.Application) -> None:
        """Stopping: every page is closed, so every console quits."""
        for websocket in list(self.pages):
            await websocket.close(code=1001, message=b"queuectl web is stopping")


async def relay(websocket: web.WebSocketResponse, console: AppService) -> None:
    """The browser's keys, size and focus to the console (textual-serve's
    messages), ignoring anything malformed."""
    async for message in websocket:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            kind, data = json.loads(message.data)[:2]
        except (ValueError, TypeError):
            continue
        if kind == "stdin" and isinstance(data, str):
            await console.send_bytes(data.encode("utf-8"))
        elif kind == "resize" and isinstance(data, dict):
            await console.set_terminal_size(bounded(data.get("width"), 80, 10, 1000),
                                            bounded(data.get("height"), 24, 5, 500))
        elif kind == "ping":
            await websocket.send_json(["pong", data])
        elif kind == "blur":
            await console.blur()
        elif kind == "focus":
            await console.focus()


def bounded(value: Any, default: int, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return max(low, min(high, number))


def url_of(host: str, port: int) -> str:
    shown = socket.gethostname() if host in WILDCARDS else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def setup_logging(tokens: Tokens) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("queuectl web: %(message)s"))
    handler.addFilter(Scrub(tokens.secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def serve(settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM; then close every page (its console quits)."""
    setup_logging(settings.tokens)
    return asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = WebConsole(settings)
    runner = web.AppRunner(server.application(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, settings.host, settings.port).start()
        except OSError as exc:
            raise QueuectlError(f"cannot listen on {settings.host}:{settings.port}: "
                                f"{exc.strerror or exc}") from None
        port = runner.addresses[0][1]  # --port 0: the one the system chose
        server.cookie = f"queuectl_web_{port}"  # cookies ignore ports: one name per server
        announce(settings, port)
        await stop.wait()
        log.info("stopping: closing %d open page(s)", len(server.pages))
    finally:
        await runner.cleanup()
    return 0


def announce(settings: Settings, port: int) -> None:
    """The one place a token is ever printed: the URL of a token made up now."""
    url = url_of(settings.host, port)
    mode = " (read-only)" if settings.read_only else ""
    if settings.tokens.generated:
        print(f"queuectl web{mode}: open {url}?token={settings.tokens.secrets[0]}", flush=True)
    else:
        print(f"queuectl web{mode}: open {url}?token=… with your token "
              f"(names: {', '.join(settings.tokens.names)})", flush=True)
    if not is_loopback(settings.host):
        log.warning("listening on %s: anyone who can reach this port can try; put it "
                    "behind a TLS reverse proxy (docs/web.md), plain HTTP shows the "
                    "token to the network", settings.host)
