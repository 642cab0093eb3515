"""A real `queuectl web` process on a free port, and what tests ask of it.

The server is started as a user would start it (`--port 0` picks a free port;
the URL it prints says which); its log is read as it is written. A page is a
websocket opened with the session cookie the token bought: the server starts
one console process for it, whose terminal output comes back as frames
(ANSI text: `screen_text` strips the escapes, so a test can look for a word).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.helpers import cli_env, pid_alive, wait_for

ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>])")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def write_token_file(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


class WebServer:
    """`queuectl --db DB web --port 0 ...` in its own session, log collected."""

    def __init__(self, db: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "queuectl_tui", "--db", db, "web", "--port", "0", *args],
            env=cli_env(db, **(env or {})), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        self.out: list[str] = []
        self.log: list[str] = []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.log)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()
        line = wait_for(lambda: next((x for x in self.out if "open http" in x), None)
                        or self.proc.poll() is not None, timeout=60,
                        message="queuectl web to print its URL")
        if line is True:
            raise AssertionError(f"queuectl web exited {self.proc.returncode}: {self.log}")
        self.printed = line
        self.base = re.search(r"(http://[^/]+/)", line).group(1)

    @staticmethod
    def _read(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_log(self, text: str, timeout: float = 60) -> str:
        return wait_for(lambda: next((x for x in self.log if text in x), None), timeout,
                        message=f"{text!r} in the server's log")

    def console_pid(self, timeout: float = 60) -> int:
        """The console of the page opened last (the server logs its pid)."""
        opened = self.wait_log("page opened by", timeout)
        return int(re.search(r"console pid (\d+)", opened).group(1))

    def children(self) -> list[int]:
        found = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == self.proc.pid and pid_alive(int(entry)):
                found.append(int(entry))
        return found

    def get(self, path: str, cookie: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(self.base + path.lstrip("/"), headers=headers or {})
        if cookie:
            request.add_header("Cookie", cookie)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def sign_in(self, token: str) -> str:
        """The cookie header a browser would keep after opening /?token=…"""
        status, headers, _ = self.get(f"/?token={token}")
        assert status == 200, status
        return headers["Set-Cookie"].split(";")[0]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


@pytest.fixture
def web_servers():
    """Start `queuectl web` with `web_servers(db, *args)`; all are stopped at the end."""
    started: list[WebServer] = []

    def start(db: str, *args: str, **kw: Any) -> WebServer:
        server = WebServer(db, *args, **kw)
        started.append(server)
        return server

    yield start
    for server in started:
        children = server.children()
        server.stop()
        for pid in children:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if server.log:
            print(f"--- queuectl web {server.proc.pid} log ---", *server.log[-40:], sep="\n")


def screen_text(frames: list[bytes]) -> str:
    return ANSI.sub("", b"".join(frames).decode("utf-8", "replace"))


class Page:
    """One open page without a browser: the websocket textual.js would open."""

    def __init__(self, server: WebServer, cookie: str | None,
                 headers: dict[str, str] | None = None) -> None:
        self.server = server
        self.cookie = cookie
        self.headers = dict(headers or {})
        self.frames: list[bytes] = []

    async def __aenter__(self) -> "Page":
        import aiohttp
        headers = dict(self.headers)
        if self.cookie:
            headers["Cookie"] = self.cookie
        self.session = aiohttp.ClientSession()
        url = self.server.base.replace("http://", "ws://") + "ws?width=120&height=36"
        try:
            self.ws = await self.session.ws_connect(url, headers=headers)
        except BaseException:
            await self.session.close()
            raise
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        import aiohttp
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                self.frames.append(message.data)

    async def keys(self, *keys: str) -> None:
        for key in keys:
            await self.ws.send_json(["stdin", key])
            await asyncio.sleep(0)

    async def shows(self, text: str, timeout: float = 60, since: int = 0) -> None:
        """Wait until the console has drawn `text` (in frames from `since` on)."""
        deadline = time.monotonic() + timeout
        while text not in screen_text(self.frames[since:]):
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed {text!r}")
            await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: Any) -> None:
        await self.ws.close()
        self._reader.cancel()
        await self.session.close()


async def until(predicate: Callable[[], Any], timeout: float = 60,
                message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.05)
