"""`?`: every key, for every view, on one page."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from queuectl_tui.console.formatting import two_columns

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Everywhere", (
        ("1 2 3 4 5 6 7", "Jobs, Workers, DLQ, History, Config, Queues, Schedules "
                          "(or click a tab)"),
        ("j k ↓ ↑", "move; PgDn PgUp page; g G first and last"),
        ("/", "filter: state:dead queue:mail cmd:curl worker:3 id:ab12 or free text; "
              "Esc clears"),
        ("n", "enqueue a job"),
        ("ctrl+p", "command palette: every action by name"),
        ("?", "this help;  q quit (workers keep running)"),
    )),
    ("Jobs", (
        ("[ ]", "previous / next state tab (All, Pending, Blocked, Running, Retrying, Dead, "
                "Done, Cancelled)"),
        ("s S", "sort by next column / reverse the order (or click a column header)"),
        ("enter v", "show or hide the detail pane (fields, last error, output)"),
        ("h", "history of the selected job"),
        ("a", "go to what the selected job waits for (enqueued --after; state Blocked)"),
        ("c", "cancel the marked jobs or the selected one; a running one is stopped (SIGTERM, "
               "then SIGKILL) and all end Cancelled, not in the DLQ (asks first)"),
        ("r  d", "retry the selected dead job / delete the selected job (asks first)"),
        ("space  u", "mark or unmark a job / unmark all"),
        ("R  D", "retry / delete the marked jobs, or all the filter and tab match (asks)"),
        ("l", "the selected job's whole log, full screen (see Log viewer)"),
        ("tab", "into the detail pane: j k g G scroll it; tab or esc back to the list"),
    )),
    ("Workers", (
        ("s  +", "start one more worker (it keeps running after you quit)"),
        ("x  -", "stop the selected worker / the newest one, after its current job"),
        ("X", "stop every worker (asks first)"),
        ("a", "show or hide stopped workers"),
    )),
    ("DLQ", (
        ("r", "retry the selected job now (attempts reset)"),
        ("space", "mark or unmark; u unmarks all"),
        ("R", "retry the marked jobs, or all that match the filter (asks first)"),
        ("d D", "delete the selected / marked or all matching (asks first)"),
        ("enter", "open the job in Jobs: every field and its output"),
        ("l", "the selected job's whole log, full screen (see Log viewer)"),
    )),
    ("History", (
        ("enter", "open the event's job in Jobs"),
        ("/", "job:ID state:dead worker:x, or text in the job id or note"),
    )),
    ("Config", (
        ("enter e", "edit the selected key; the value is checked before it is saved"),
    )),
    ("Queues", (
        ("p", "pause the selected queue (running jobs finish) or resume it"),
        ("l", "limit how many of its jobs run at once, on every worker and host"),
        ("enter", "open the queue's jobs in Jobs (filter queue:NAME)"),
    )),
    ("Schedules", (
        ("p", "pause the selected schedule (no ticks fire) or resume it"),
        ("r", "run it now: one job outside its ticks"),
        ("enter", "open the jobs it made in Jobs (filter schedule:NAME)"),
    )),
    ("Log viewer (l on a job)", (
        ("j k g G", "scroll; at the top or end of what is held, the next part is read"),
        ("f  w", "follow new output on or off / wrap long lines on or off"),
        ("/ n N", "search (no capitals: any case) / next / previous, through the whole log"),
        ("r", "the whole log, then each run in turn"),
        ("p", "open it in $PAGER (less if unset), escaped as shown here"),
        ("esc q", "back"),
    )),
)


HELP_WIDTH = 84  # the help dialog's text width (app.tcss: #dialog.help is 96 wide, less border, padding, scrollbar)


def help_table(current: str | None) -> Text:
    """Every view's keys, the current view's title highlighted: one Text (a Rich
    grid took 90 ms to draw the first time the dialog opened)."""
    rows: list[tuple[str | Text, Text | str]] = []
    for title, keys in KEYS:
        style = "bold reverse" if title.lower() == (current or "") else "bold underline"
        rows.append((Text(title, style=style), ""))
        rows.extend(keys)
        rows.append(("", ""))
    return two_columns(rows, width=HELP_WIDTH, label_style="bold #ffd75f", gap=2)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, current: str | None = None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="help"):
            yield Static(help_table(self.current))

    def action_close(self) -> None:
        self.dismiss(None)
