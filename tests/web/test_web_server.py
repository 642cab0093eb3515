"""`queuectl web` as a real process: the gate, the pages' console processes, the log.

A page here is the websocket textual.js opens, driven without a browser
(tests/web/test_web_browser.py drives Chromium). What the console draws
comes back as terminal output, which is enough to see a word appear.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from queuectl_tui.clock import Ids
from queuectl_tui.engine import registry
from queuectl_tui.engine.jobspec import JobSpec
from queuectl_tui.engine.queue import Queue
from queuectl_tui.engine.storage.opening import open_database
from tests.helpers import cli_env, cli_json, pid_alive, run_cli, wait_for
from tests.web.conftest import Page, new_token, until, write_token_file

pytest.importorskip("textual_serve", reason="queuectl web needs the `web` extra: "
                                            "pip install -e '.[web]'")


def dead_job(db: str, job_id: str) -> None:
    """A job that ran once and died (through the engine, as a worker records it)."""
    q = Queue(open_database(db), ids=Ids(random.Random(5)))
    try:
        registry.register("test-worker", host="test-host", pid=1, supervisor_pid=None,
                          now=time.time())
        q.enqueue(JobSpec(command="exit 3", id=job_id, max_retries=0))
        claimed = q.claim("test-worker", 30)
        assert claimed is not None
        q.finish(claimed, "test-worker", exit_code=3, error="exit code 3")
    finally:
        q.opened.close()


def state(db: str, job_id: str) -> str:
    return cli_json(db, "show", job_id)["state"]


def proc_text(pid: int, name: str) -> bytes:
    with open(f"/proc/{pid}/{name}", "rb") as fh:
        return fh.read()


@pytest.fixture
def team(tmp_path: Path) -> tuple[Path, str, str]:
    alice, bob = new_token(), new_token()
    return write_token_file(tmp_path / "tokens", [f"alice:{alice}", f"bob:{bob}"]), alice, bob


def test_a_made_up_token_is_printed_once_and_opens_the_page(tmp_path, web_servers):
    server = web_servers(str(tmp_path / "queue.db"))
    assert len([line for line in server.out if "token=" in line]) == 1
    token = server.printed.rsplit("token=", 1)[1]
    assert server.base.startswith("http://127.0.0.1:")  # this host only, unless told
    status, headers, body = server.get(f"/?token={token}&fontsize=20")
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert token not in cookie
    assert 'location.replace("/?fontsize=20")' in body  # the same page, without the token
    status, _, page = server.get("/?fontsize=20", cookie=cookie.split(";")[0])
    assert status == 200 and "/ws" in page and "googleapis" not in page
    assert token.encode() not in proc_text(server.proc.pid, "cmdline")
    assert token.encode() not in proc_text(server.proc.pid, "environ")
    assert not any(token in line for line in server.log)


def test_without_the_right_token_nothing_opens(tmp_path, team, web_servers):
    path, alice, _ = team
    db = str(tmp_path / "queue.db")
    server = web_servers(db, "--token-file", str(path))
    assert "token=" not in server.printed.replace("token=…", "")  # a file's tokens are not printed
    for asked in ("/", "/?token=" + "x" * 40, "/?token=", "/static/js/textual.js",
                  "/static/css/xterm.css", "/download/abc", "/ws", "/favicon.ico",
                  f"/static/js/textual.js?token={alice}",  # a token opens `/` only
                  "/ws?token=" + alice):
        status, _, body = server.get(asked)
        assert (status, body) == (403, "403: forbidden\n"), asked
    status, _, _ = server.get("/", cookie="queuectl_web_1=made-up")
    assert status == 403

    async def websocket_refused() -> None:
        import aiohttp
        for cookie in (None, "queuectl_web_1=made-up"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                async with Page(server, cookie):
                    pass
            assert refused.value.status == 403
    asyncio.run(websocket_refused())
    assert server.children() == []
    assert not any("page opened" in line for line in server.log)
    assert not any(alice in line for line in server.log + server.out)


def test_each_page_is_one_console_that_knows_who_opened_it(db, team, web_servers):
    """Both backends: a page's keys reach the database (a DLQ retry), the console
    process carries QUEUECTL_ACTOR and no token, and closing the page ends it."""
    path, alice, bob = team
    dead_job(db, "nightly-dump")
    server = web_servers(db, "--token-file", str(path))
    cookie = server.sign_in(bob)

    async def session() -> int:
        async with Page(server, cookie) as page:
            await page.shows("nightly-dump")
            pid = server.console_pid()
            environ = proc_text(pid, "environ").split(b"\0")
            assert b"QUEUECTL_ACTOR=web:bob" in environ
            assert not any(e.startswith(b"QUEUECTL_READ_ONLY=") for e in environ)
            for secret in (alice, bob):
                assert secret.encode() not in proc_text(pid, "cmdline")
                assert secret.encode() not in b"\0".join(environ)
            assert server.children() == [pid]
            seen = len(page.frames)
            await page.keys("3")
            await page.shows("LAST ERROR", since=seen)  # the DLQ's own column
            await page.keys("r")
            await until(lambda: state(db, "nightly-dump") == "pending", message="the retry")
        return pid

    pid = asyncio.run(session())
    wait_for(lambda: not pid_alive(pid), message="the page's console to end")
    server.wait_log(f"console pid {pid} ended")
    assert server.children() == []


def test_a_read_only_server_changes_nothing(tmp_path, team, web_servers):
    path, alice, _ = team
    db = str(tmp_path / "queue.db")
    dead_job(db, "nightly-dump")
    server = web_servers(db, "--token-file", str(path), "--read-only")
    assert "(read-only)" in server.printed
    cookie = server.sign_in(alice)

    async def session() -> None:
        async with Page(server, cookie) as page:
            await page.shows("READ-ONLY")
            pid = server.console_pid()
            assert b"QUEUECTL_READ_ONLY=1" in proc_text(pid, "environ").split(b"\0")
            await page.keys("3")
            await page.shows("LAST ERROR")
            seen = len(page.frames)
            await page.keys("r", "R", "d", "D", "n")
            await page.shows("read-only console", since=seen)
    asyncio.run(session())
    assert state(db, "nightly-dump") == "dead"


def test_the_environment_makes_it_read_only_too(tmp_path, team, web_servers):
    path, _, _ = team
    server = web_servers(str(tmp_path / "queue.db"), "--token-file", str(path),
                         env={"QUEUECTL_READ_ONLY": "1"})
    assert "(read-only)" in server.printed


def test_a_page_from_another_site_and_too_many_pages_are_refused(tmp_path, team, web_servers):
    path, alice, _ = team
    server = web_servers(str(tmp_path / "queue.db"), "--token-file", str(path),
                         "--max-pages", "1")
    cookie = server.sign_in(alice)

    async def pages() -> None:
        import aiohttp
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with Page(server, cookie, headers={"Origin": "http://evil.example"}):
                pass
        assert refused.value.status == 403
        async with Page(server, cookie) as first:
            await first.shows("queuectl")
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                async with Page(server, cookie):
                    pass
            assert refused.value.status == 503
            assert len(server.children()) == 1
    asyncio.run(pages())


def test_stopping_the_server_ends_every_page(tmp_path, team, web_servers):
    path, alice, _ = team
    server = web_servers(str(tmp_path / "queue.db"), "--token-file", str(path))
    cookie = server.sign_in(alice)

    async def page_then_stop() -> int:
        async with Page(server, cookie) as page:
            await page.shows("queuectl")
            pid = server.console_pid()
            assert await asyncio.to_thread(server.stop) == 0
            await until(lambda: page.ws.closed, message="the page to be closed")
        return pid
    pid = asyncio.run(page_then_stop())
    wait_for(lambda: not pid_alive(pid), message="the console to end")
    assert not any(alice in line for line in server.log)


def test_any_other_address_is_warned_about(tmp_path, web_servers):
    server = web_servers(str(tmp_path / "queue.db"), "--host", "0.0.0.0")
    server.wait_log("behind a TLS reverse proxy")


def test_bad_options_and_files_are_one_line(tmp_path):
    db = str(tmp_path / "queue.db")
    loose = tmp_path / "loose"
    loose.write_text("alice:" + "x" * 30 + "\n")
    loose.chmod(0o644)
    result = run_cli(db, "web", "--token-file", str(loose))
    assert result.returncode == 2 and "chmod 600" in result.stderr
    assert "x" * 30 not in result.stderr and len(result.stderr.splitlines()) == 1
    for args in (["--port", "70000"], ["--max-pages", "0"], ["--host", "a b"]):
        result = run_cli(db, "web", *args)
        assert result.returncode == 2, args


def test_without_textual_serve_it_says_what_to_install(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "textual_serve.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'textual_serve'\", name='textual_serve')\n")
    env = cli_env(str(tmp_path / "queue.db"))
    env["PYTHONPATH"] = f"{shadow}{os.pathsep}{env['PYTHONPATH']}"
    result = subprocess.run([sys.executable, "-m", "queuectl_tui", "web"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "queuectl: error: the web console needs textual-serve (textual_serve is missing): "
        "pip install 'queuectl[web]'"]
    assert result.stdout == ""


def test_headless_commands_do_not_load_the_web_libraries(tmp_path):
    probe = ("import sys\nfrom queuectl_tui.cli import main\nmain(['status', '--json'])\n"
             "try:\n    main(['web', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('aiohttp', 'textual_serve', 'textual', 'jinja2')))\n")
    result = subprocess.run([sys.executable, "-c", probe], env=cli_env(str(tmp_path / "q.db")),
                            capture_output=True, text=True, timeout=60)
    assert "--token-file" in result.stdout, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr
