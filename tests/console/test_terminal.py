"""The console in a real terminal (tmux) on jobs a real pool ran: what a job
prints never reaches the terminal as control sequences (no cleared rows, no new
window title), and the screen stays whole."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT, WorkerPool, cli_json, run_cli, wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

WIDTH, HEIGHT = 140, 40
EVIL = (r"printf '\033[31mRED\033[0m \033[2J\033]0;pwned\007 done\n'; "
        r"for i in 1 2 3; do printf '\rprogress %d0%%' $i; done; echo")
NOISE = "head -c 3000 /dev/urandom; echo; echo END"


class Tmux:
    """One tmux server on its own socket, one window, torn down with the test."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                              capture_output=True, text=True, check=True).stdout

    def rows(self) -> list[str]:
        return self.run("capture-pane", "-p", "-t", "t").split("\n")[:HEIGHT]

    def screen(self) -> str:
        return "\n".join(self.rows())

    def wait_for(self, text: str, row: int | None = None, timeout: float = 60) -> None:
        """Poll the screen until `text` shows (in `row` if given); fail showing it."""
        def seen() -> bool:
            rows = self.rows()
            return text in (rows[row] if row is not None else "\n".join(rows))
        try:
            wait_for(seen, timeout, message=repr(text))
        except AssertionError:
            raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux():
    server = Tmux(f"queuectl-test-{os.getpid()}")
    yield server
    server.close()


def test_job_output_cannot_clear_or_retitle_the_terminal(tmp_path, tmux):
    db = tmp_path / "q.db"
    for command, job_id in ((NOISE, "noise"), (EVIL, "evil")):
        assert run_cli(db, "enqueue", command, "--id", job_id).returncode == 0
    pool = WorkerPool(db)
    try:
        wait_for(lambda: all(j["state"] == "completed" for j in cli_json(db, "list")),
                 message="both jobs to complete")
    finally:
        pool.close()
    shown = run_cli(db, "show", "evil").stdout
    assert r"\x1b[2J" in shown  # the CLI's escaping, which the console must match

    # Without COLUMNS and LINES (pytest sets them): Textual would take them for the size.
    env = f"-u COLUMNS -u LINES PYTHONPATH={shlex.quote(str(ROOT))} TERM=xterm-256color"
    tmux.run("new-session", "-d", "-s", "t", "-x", str(WIDTH), "-y", str(HEIGHT),
             f"cd {shlex.quote(str(tmp_path))} && exec env {env} "
             f"{shlex.quote(sys.executable)} -m queuectl_tui --db q.db")
    tmux.run("set-option", "-t", "t", "allow-rename", "on")
    tmux.run("set-option", "-t", "t", "set-titles", "on")
    # evil is the newest job: the first row, its detail and output on screen.
    tmux.wait_for("2 done", row=0)
    tmux.wait_for("progress 30%")
    screen = tmux.screen()
    assert r"\x1b[31mRED\x1b[0m \x1b[2J\x1b]0;pwned\x07 done" in screen
    assert "progress 10%" not in screen  # the progress bar's latest state only
    assert "pwned" not in tmux.run("display-message", "-p", "-t", "t", "#{pane_title}")
    assert_whole(tmux.rows())

    tmux.run("send-keys", "-t", "t", "j")  # noise: 3,000 random bytes
    tmux.wait_for("END")
    assert_whole(tmux.rows())
    assert "pwned" not in tmux.run("display-message", "-p", "-t", "t", "#{pane_title}")


def assert_whole(rows: list[str]) -> None:
    """The header, view tabs, list, detail and footer where they belong: a
    clear-screen sent through would blank rows the console does not redraw."""
    assert len(rows) == HEIGHT
    assert "2 done" in rows[0], rows[0]
    assert "1 Jobs" in rows[1], rows[1]
    assert "ID" in rows[5] and "COMMAND" in rows[5], rows[5]
    assert "evil" in rows[6] and "noise" in rows[7], rows[6:8]
    assert "Quit" in rows[-1], rows[-1]
    detail = [i for i, row in enumerate(rows) if row.lstrip().startswith("id ")]
    assert detail, "the detail pane's fields"
    fields = [row.split()[0] for row in rows[detail[0]:detail[0] + 4]]
    assert fields == ["id", "state", "queue", "command"], fields
