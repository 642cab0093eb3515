"""`queuectl web` in a real browser: Debian's Chromium, headless, driven by Playwright.

Playwright's own browser download cannot work on these machines, so the test
uses /usr/bin/chromium (`apt-get install -y chromium`). The console draws on a
canvas (xterm.js), so its text is not in the page: the test reads what the
server sends the page over its websocket (the terminal's output, escapes
stripped) and checks the database for what keys did. Skipped, saying why,
when Chromium or Playwright is missing, unless CI is set: then it fails.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.helpers import WorkerPool, cli_json, pid_alive, run_cli, wait_for
from tests.web.conftest import new_token, screen_text, write_token_file

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser_or_skip() -> None:
    missing = []
    for module, how in (("playwright", "pip install playwright"),
                        ("textual_serve", "pip install -e '.[web]'")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{module} ({how})")
    if not os.path.exists(CHROMIUM):
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if missing:
        why = "the browser test needs " + ", ".join(missing)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{why}; CI is set, so it must run")
        pytest.skip(why)


class Screen:
    """What the page's terminal was sent, frame by frame."""

    def __init__(self, page) -> None:
        self.frames: list[bytes] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        self.frames.append(payload if isinstance(payload, bytes) else payload.encode())

    def mark(self) -> int:
        return len(self.frames)

    def shows(self, page, text: str, since: int = 0, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in screen_text(self.frames[since:]):
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed {text!r}")
            page.wait_for_timeout(50)  # lets Playwright deliver the frames


def test_the_console_in_a_browser(tmp_path: Path, web_servers):
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    db = str(tmp_path / "queue.db")
    ok = tmp_path / "upstream-is-back"
    assert run_cli(db, "enqueue", "--id", "nightly-report", "--max-retries", "0",
                   f"test -f {ok}").returncode == 0
    pool = WorkerPool(db, 1)
    try:
        worker = pool.wait_ready()[0]
        wait_for(lambda: cli_json(db, "show", "nightly-report")["state"] == "dead",
                 message="the job to die")
        alice = new_token()
        tokens = write_token_file(tmp_path / "tokens", [f"alice:{alice}"])
        server = web_servers(db, "--token-file", str(tokens))

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                # No token, a wrong one: a bare refusal, and no console started.
                page = browser.new_page()
                for url in (server.base, server.base + "?token=" + "x" * 32):
                    response = page.goto(url)
                    assert response.status == 403
                    assert page.inner_text("body").strip() == "403: forbidden"
                page.close()
                assert server.children() == []

                # With the token: the page opens and the token leaves its URL.
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                screen = Screen(page)
                page.goto(f"{server.base}?token={alice}")
                page.wait_for_url(re.compile(r"^[^?]*/$"))
                assert "token" not in page.url
                cookie, = page.context.cookies()
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
                page.wait_for_selector("body.-first-byte", timeout=60_000)
                screen.shows(page, "nightly-report")  # the Jobs table
                console = server.console_pid()
                with open(f"/proc/{console}/environ", "rb") as fh:
                    assert b"QUEUECTL_ACTOR=web:alice" in fh.read().split(b"\0")

                # Keys switch views; a retry in the DLQ reaches the database.
                page.locator(".xterm-helper-textarea").focus()
                seen = screen.mark()
                page.keyboard.press("2")
                screen.shows(page, worker["id"], since=seen)  # the pool's worker pane
                seen = screen.mark()
                page.keyboard.press("3")
                screen.shows(page, "LAST ERROR", since=seen)
                ok.touch()
                seen = screen.mark()
                page.keyboard.press("r")
                wait_for(lambda: cli_json(db, "show", "nightly-report")["state"] ==
                         "completed", message="the retried job to run")
                assert cli_json(db, "dlq", "list") == []
                screen.shows(page, "0 dead", since=seen)
                # The audit trail names the token that did it (issue 31, who did what).
                trail = run_cli(db, "audit", "--json").stdout.splitlines()
                retry = json.loads(trail[0])
                assert (retry["action"], retry["via"], retry["token"], retry["job_ids"]) == \
                    ("dlq retry", "web", "alice", ["nightly-report"])

                # Closing the page ends its console; the pool runs on.
                page.close()
                wait_for(lambda: not pid_alive(console), message="the console to end")
            finally:
                browser.close()
        assert [w["id"] for w in pool.live_workers()] == [worker["id"]]
    finally:
        pool.close()
    print(f"browser test: {time.monotonic() - started:.1f}s")
