"""Issue 26, "alive through faults": the console against a real locked SQLite
file, a real deleted or replaced one, and a real PostgreSQL server whose
backends are terminated or cannot be reached.

The app runs its real database threads and a real clock; every wait polls with
a deadline, none sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from queuectl_tui.console.app import ConsoleApp
from queuectl_tui.console.pilot import press_and_settle as press
from queuectl_tui.console.pilot import settle
from queuectl_tui.console.screens.help import HelpScreen
from queuectl_tui.console.widgets.window_table import WindowTable
from queuectl_tui.engine.storage.models import Job

SIZE = (120, 36)
KEY_BOUND_S = 2.0  # a key answered within this while a write waits (the lock holds 10 s)


def live_app(db: str, refresh_interval: float | None = None) -> ConsoleApp:
    """The console as a person gets it: database threads and the real clock."""
    return ConsoleApp(db, refresh_interval=refresh_interval, threaded=True, steady=True)


async def until(predicate, what: str, timeout: float = 15.0) -> float:
    """Poll `predicate` (without waiting for the console to settle: a write may be
    blocked on purpose); returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render()).replace("\u00a0", " ")


def shown_ids(app) -> list[str]:
    table = app.screen.query_one("#table", WindowTable)
    return [r.get("id") or r.get("job_id") for r in table.buffer]


def messages(app) -> list[str]:
    return [n.message for n in app._notifications]


def cli(db: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "queuectl_tui", "--db", db, *args],
                          capture_output=True, text=True, timeout=60)


class LockHolder:
    """Another process inside BEGIN IMMEDIATE on the file until released."""

    CODE = ("import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('COMMIT')\n")

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", self.CODE, path], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "locked\n"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait(10)


# ---------------------------------------------------------------- a locked SQLite file

async def test_a_write_waiting_for_the_lock_leaves_every_key_answering(queue_db):
    """Another process holds BEGIN IMMEDIATE: `d` `y` waits for the lock on the
    write thread; meanwhile views switch, History reads its rows and `?` opens
    at once, the notice says the write waits; the outcome shows after release."""
    app = live_app(queue_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        victim = app.screen.query_one("#table", WindowTable).current
        assert victim is not None and victim["state"] != "processing"
        holder = LockHolder(queue_db)
        try:
            await pilot.press("d")
            await until(lambda: type(app.screen).__name__ == "ConfirmDialog", "the question")
            started = time.monotonic()
            await pilot.press("y")
            assert time.monotonic() - started < KEY_BOUND_S, "y waited for the write"
            await until(lambda: app.db.writes, "the write to start")
            await until(lambda: "waiting for the lock" in text_of(app, "#notice"),
                        "the waiting notice", timeout=KEY_BOUND_S)
            assert "Esc gives up" in text_of(app, "#notice")
            started = time.monotonic()
            await pilot.press("4")
            await until(lambda: app.current_mode == "history"
                        and app.screen.query_one("#table").row_count > 0,
                        "History with its rows", timeout=KEY_BOUND_S)
            await pilot.press("question_mark")
            await until(lambda: isinstance(app.screen, HelpScreen), "the help",
                        timeout=KEY_BOUND_S)
            await pilot.press("escape")  # closes the help; the write goes on waiting
            await until(lambda: app.current_mode == "history"
                        and not isinstance(app.screen, HelpScreen), "the help closed")
            await pilot.press("1")
            assert time.monotonic() - started < 3 * KEY_BOUND_S
            assert app.db.writes, "the write finished while the lock was held"
            assert Job.get_or_none(Job.id == victim["id"]) is not None
        finally:
            holder.release()
        await until(lambda: f"deleted {victim['id']}" in messages(app), "the outcome")
        await settle(pilot)
        assert Job.get_or_none(Job.id == victim["id"]) is None
        assert not app.screen.query_one("#notice").display


async def test_esc_gives_up_a_write_waiting_for_the_lock(queue_db):
    """Esc stops the wait at once: nothing is written, and the console says so."""
    app = live_app(queue_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        victim = app.screen.query_one("#table", WindowTable).current
        holder = LockHolder(queue_db)
        try:
            await pilot.press("d")
            await until(lambda: type(app.screen).__name__ == "ConfirmDialog", "the question")
            await pilot.press("y")
            await until(lambda: "waiting for the lock" in text_of(app, "#notice"),
                        "the waiting notice", timeout=KEY_BOUND_S)
            started = time.monotonic()
            await pilot.press("escape")
            await until(lambda: any("gave up" in m for m in messages(app)), "giving up",
                        timeout=KEY_BOUND_S)
            assert time.monotonic() - started < KEY_BOUND_S
            assert not app.db.writes
        finally:
            holder.release()
        await settle(pilot)
        assert Job.get_or_none(Job.id == victim["id"]) is not None, "deleted after all"
        assert not any(m.startswith("deleted") for m in messages(app))
        await press(pilot, "escape")  # no write waits: Esc is the view's own again
        assert app.current_mode == "jobs"


async def test_quitting_while_a_write_waits_does_not_wait_for_the_lock(queue_db):
    """q while a write waits: the console closes at once, the write given up."""
    app = live_app(queue_db)
    holder = LockHolder(queue_db)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            victim = app.screen.query_one("#table", WindowTable).current
            await pilot.press("d")
            await until(lambda: type(app.screen).__name__ == "ConfirmDialog", "the question")
            await pilot.press("y")
            await until(lambda: app.db.writes, "the write to start")
            started = time.monotonic()
            await pilot.press("q")
        assert time.monotonic() - started < KEY_BOUND_S
    finally:
        holder.release()
    assert cli(queue_db, "show", victim["id"]).returncode == 0, "deleted after all"


# ---------------------------------------------------------------- a deleted SQLite file

def remove_database(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


async def test_a_deleted_file_is_said_and_no_write_into_it_is_reported_saved(queue_db):
    """rm of the file (and its -wal, -shm) under an open console: the rows stay,
    dimmed and marked stale with the reason; `n` is refused, not "enqueued";
    once a new file exists at the path, ctrl+r opens it and shows its jobs."""
    app = live_app(queue_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = shown_ids(app)
        assert len(before) == 16
        remove_database(queue_db)
        app.request_refresh()
        await settle(pilot)
        assert "stale" in text_of(app, "#counts")
        notice = text_of(app, "#notice")
        assert "was deleted" in notice and "stale since" in notice, notice
        assert app.screen.query_one("#body").has_class("-stale")
        assert shown_ids(app) == before  # kept, marked, not silently current

        await press(pilot, "n", *"echo into the void", "enter")
        error = text_of(app, "#error")
        assert "was deleted" in error and "nothing was written" in error, error
        assert not any(m.startswith("enqueued") for m in messages(app))
        assert not os.path.exists(queue_db), "the refused write made a file"
        await press(pilot, "escape")

        made = cli(queue_db, "enqueue", "echo after", "--id", "after-rm")
        assert made.returncode == 0, made.stderr
        app.request_refresh()
        await settle(pilot)
        assert "ctrl+r opens the file now at that path" in text_of(app, "#notice")
        await press(pilot, "ctrl+r")
        app.request_refresh()
        await settle(pilot)
        assert shown_ids(app) == ["after-rm"]
        assert "stale" not in text_of(app, "#counts")
        assert not app.screen.query_one("#notice").display
        await press(pilot, "n", *"echo into the new file", "enter")
        assert any(m.startswith("enqueued") for m in messages(app))
        assert cli(queue_db, "status").returncode == 0


async def test_a_replaced_file_is_noticed_and_reopened(queue_db, tmp_path: Path):
    """mv of another database over the path: the console notices the new inode,
    and ctrl+r shows the new file's jobs."""
    other = str(tmp_path / "other.db")
    assert cli(other, "enqueue", "echo other", "--id", "from-other").returncode == 0
    app = live_app(queue_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        os.replace(other, queue_db)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(other + suffix):
                os.replace(other + suffix, queue_db + suffix)
        app.request_refresh()
        await settle(pilot)
        assert "replaced by another file" in text_of(app, "#notice")
        await press(pilot, "ctrl+r")
        app.request_refresh()
        await settle(pilot)
        assert shown_ids(app) == ["from-other"]


async def test_a_file_deleted_during_a_write_is_not_reported_saved(queue_db):
    """The look after the write: a change that landed in a file deleted while it
    ran is reported lost, not done."""
    app = live_app(queue_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)

        def delete_then_write(queue):
            remove_database(queue_db)
            return queue.delete(["cleanup"])

        result = await app.act(delete_then_write, done="deleted cleanup")
        assert result is None
        await settle(pilot)
        assert any("not saved" in m and "was deleted" in m for m in messages(app)), \
            messages(app)
        assert "deleted cleanup" not in messages(app)


# ---------------------------------------------------------------- PostgreSQL

def pg_fresh(pg_database: str) -> str:
    from tests.conftest import _reset_pg
    _reset_pg(pg_database)
    return pg_database


def terminate_backends(url: str) -> int:
    """pg_terminate_backend of every connection to the test's database but ours."""
    import psycopg2
    from urllib.parse import urlparse
    name = urlparse(url).path.lstrip("/")
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            return cur.fetchone()[0]
    finally:
        conn.close()


async def test_terminated_postgresql_backends_are_reconnected(pg_database, tmp_path,
                                                              monkeypatch):
    """pg_terminate_backend of the console's connections: within seconds the
    header is current again (no problem left), a job enqueued elsewhere shows,
    the Workers view reads, and `n` enqueues."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    url = pg_fresh(pg_database)
    assert cli(url, "enqueue", "echo one", "--id", "one").returncode == 0
    app = live_app(url, refresh_interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert shown_ids(app) == ["one"]
        await press(pilot, "n", *"echo before", "enter")  # the write thread connects too
        await until(lambda: app.db.slow_results, "the slow thread's first read")
        assert terminate_backends(url) >= 2  # reads and slow counts (and writes)
        assert cli(url, "enqueue", "echo two", "--id", "two").returncode == 0
        took = await until(lambda: "two" in shown_ids(app) and app.problem is None,
                           "the console to read again", timeout=10)
        assert took < 5
        await press(pilot, "2")
        await until(lambda: app.current_mode == "workers" and app.problem is None,
                    "the Workers view")
        await press(pilot, "1")
        terminate_backends(url)
        await press(pilot, "n", *"echo after", "enter")
        assert any(m.startswith("enqueued") and "echo after" in m for m in messages(app)), \
            messages(app)
        assert "stale" not in text_of(app, "#counts")


async def test_esc_gives_up_a_postgresql_write_waiting_for_a_row_lock(pg_database, tmp_path,
                                                                     monkeypatch):
    """Another session holds the job's row (SELECT ... FOR UPDATE, open): the
    console's delete waits on the server; Esc sends a cancel request, the wait
    ends at once and the job is still there."""
    import psycopg2
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    url = pg_fresh(pg_database)
    assert cli(url, "enqueue", "echo held", "--id", "held").returncode == 0
    app = live_app(url)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert shown_ids(app) == ["held"]
        other = psycopg2.connect(url)
        try:
            with other.cursor() as cur:
                cur.execute("SELECT id FROM job WHERE id = 'held' FOR UPDATE")
            await pilot.press("d")
            await until(lambda: type(app.screen).__name__ == "ConfirmDialog", "the question")
            await pilot.press("y")
            await until(lambda: "waiting for the lock" in text_of(app, "#notice"),
                        "the waiting notice", timeout=KEY_BOUND_S)
            started = time.monotonic()
            await pilot.press("escape")
            await until(lambda: any("gave up" in m for m in messages(app)), "giving up",
                        timeout=KEY_BOUND_S)
            assert time.monotonic() - started < KEY_BOUND_S
        finally:
            other.rollback()
            other.close()
        await settle(pilot)
        assert cli(url, "show", "held").returncode == 0, "deleted after all"
        await press(pilot, "n", *"echo next", "enter")  # the write thread works on
        assert any(m.startswith("enqueued") for m in messages(app)), messages(app)


async def test_a_read_blocked_by_a_table_lock_is_said_and_keys_answer(pg_database, tmp_path,
                                                                      monkeypatch):
    """PostgreSQL reads can wait too: another session's ACCESS EXCLUSIVE lock on
    `job` (a migration, VACUUM FULL) holds the refresh. Keys keep answering, the
    notice says the database has not answered, and it goes when the lock does."""
    import psycopg2
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    url = pg_fresh(pg_database)
    assert cli(url, "enqueue", "echo one", "--id", "one").returncode == 0
    app = live_app(url, refresh_interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        other = psycopg2.connect(url)
        try:
            with other.cursor() as cur:
                cur.execute("LOCK TABLE job IN ACCESS EXCLUSIVE MODE")
            await until(lambda: "has not answered" in text_of(app, "#notice"),
                        "the notice of a read that waits", timeout=10)
            started = time.monotonic()
            await pilot.press("5")
            await until(lambda: app.current_mode == "config", "the Config view",
                        timeout=KEY_BOUND_S)
            await pilot.press("1")
            assert time.monotonic() - started < 2 * KEY_BOUND_S
        finally:
            other.rollback()
            other.close()
        await until(lambda: not app.screen.query_one("#notice").display
                    and app.current_mode == "jobs", "the notice to go", timeout=10)
        assert shown_ids(app) == ["one"]


class Relay:
    """A TCP relay to the PostgreSQL server that can go down (refusing and
    dropping connections) and come back on the same port: a server that cannot
    be reached, for real, without stopping the shared one."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.conns: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        assert self.listener is not None
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        self.listener.close()
        self.listener = None
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self.conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


async def test_a_server_out_of_reach_marks_the_rows_stale_and_is_retried(pg_database, tmp_path,
                                                                        monkeypatch):
    """The server cannot be reached: the rows stay, dimmed, under a notice with
    the whole cause, since when they are stale and when the next try is; tries
    back off; when the server answers again the console is current by itself."""
    from urllib.parse import urlparse
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    url = pg_fresh(pg_database)
    assert cli(url, "enqueue", "echo one", "--id", "one").returncode == 0
    parsed = urlparse(url)
    relay = Relay(parsed.hostname or "127.0.0.1", parsed.port or 5432)
    through = parsed._replace(netloc=f"{parsed.username}@127.0.0.1:{relay.port}").geturl()
    app = live_app(through, refresh_interval=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert shown_ids(app) == ["one"]
        relay.down()
        await until(lambda: "reconnecting in" in text_of(app, "#notice"), "the stale notice")
        notice = text_of(app, "#notice")
        assert "stale since" in notice and "127.0.0.1" in notice, notice
        assert "stale" in text_of(app, "#counts")
        assert app.screen.query_one("#body").has_class("-stale")
        assert shown_ids(app) == ["one"]
        await press(pilot, "n", *"echo while down", "enter")  # refused, said, no crash
        assert "cannot connect" in text_of(app, "#error"), text_of(app, "#error")
        await press(pilot, "escape")
        await until(lambda: app.backoff.failures >= 2, "a second try, later")
        assert cli(url, "enqueue", "echo two", "--id", "two").returncode == 0
        relay.up()
        took = await until(lambda: app.problem is None and "two" in shown_ids(app),
                           "the console current again", timeout=10)
        assert took < 5
        assert not app.screen.query_one("#body").has_class("-stale")
        assert not app.screen.query_one("#notice").display
        relay.down()


def test_backoff_waits_longer_after_each_failure_and_resets_on_success():
    from queuectl_tui.console.faults import Backoff
    backoff = Backoff()
    assert backoff.wait_left(100.0) == 0
    waits = [backoff.failed(100.0) for _ in range(7)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    assert backoff.wait_left(110.0) == 5.0
    backoff.succeeded()
    assert backoff.wait_left(100.0) == 0 and backoff.failed(100.0) == 1.0


def test_picture_of_a_deleted_database(snap_compare, queue_db, clock):
    """What a person sees after the file went: the last rows dimmed, the header
    marked stale, and below them the whole reason and what ctrl+r does."""
    from tests.console.conftest import keys_then_settle, make_app

    async def delete_then_refresh(pilot) -> None:
        await keys_then_settle()(pilot)
        remove_database(queue_db)
        pilot.app.request_refresh()
        await settle(pilot)

    assert snap_compare(make_app(queue_db, clock), terminal_size=SIZE,
                        run_before=delete_then_refresh)


async def test_a_server_that_never_answers_is_given_up_after_the_connect_timeout(monkeypatch):
    """A PostgreSQL address that takes the connection and never says a word (a
    server dropping packets): the console's thread gives up after its connect
    timeout and says so, instead of waiting in connect for good."""
    from queuectl_tui.console import database
    monkeypatch.setattr(database, "CONNECT_TIMEOUT_S", 2)  # libpq's least
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nothing ever reads
    url = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/test"
    app = live_app(url, refresh_interval=0.5)
    async with app.run_test(size=SIZE):
        try:
            took = await until(lambda: app.problem is not None, "the problem said",
                               timeout=20)
            assert took < 10, took
            assert "timeout" in app.problem, app.problem
        finally:
            silent.close()  # a connect still waiting gets a reset: the app can close


def test_the_connect_timeout_is_a_default_a_url_or_pgconnect_timeout_overrides(monkeypatch):
    from queuectl_tui.engine.storage.opening import _open_postgres
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    base = "postgresql://postgres@127.0.0.1:5432/test"
    assert _open_postgres(base, 5)[0].connect_params["connect_timeout"] == "5"
    assert "connect_timeout" not in _open_postgres(base)[0].connect_params  # the CLI's way
    own = _open_postgres(base + "?connect_timeout=30", 5)[0].connect_params
    assert own["connect_timeout"] == "30"
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "12")
    assert "connect_timeout" not in _open_postgres(base, 5)[0].connect_params  # libpq reads it
