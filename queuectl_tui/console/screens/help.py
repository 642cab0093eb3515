"""`?`: the keys of the view it was opened from, and those that work everywhere.

Titled, it says how to close it; j/k (and the arrows, PgUp/PgDn) scroll it.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from queuectl_tui.console.context import console_of
from queuectl_tui.console.formatting import two_columns

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Everywhere", (
        ("1 2 3 4 5 6 7 8", "Jobs, Workers, DLQ, History, Config, Queues, Schedules, "
                            "Trends (or click a tab)"),
        ("j k ↓ ↑", "move; PgDn PgUp page; g G first and last"),
        ("/", "filter: state:dead queue:mail key:c1 cmd:curl worker:vm-91 id:ab12 "
              "schedule:nightly since:1h or free text (text:… for a word with a colon); enter applies"),
        ("esc", "back to where enter, a, A or h jumped from (with its filter and cursor); "
                "else clears the filter"),
        ("backspace", "back, from any view"),
        ("n", "enqueue a job (or save it held)"),
        ("ctrl+p", "command palette: every action by name"),
        ("?", "this help;  q quit (workers keep running)"),
    )),
    ("Jobs", (
        ("[ ]", "previous / next state tab (All, Pending, Blocked, Held, Running, Retrying, "
                "Dead, Done, Cancelled)"),
        ("s", "switch the order: newest first, or waiting jobs in the order they will run"),
        ("S", "reverse the order (or click ID for newest first, PRI or WHEN for run order)"),
        ("enter v", "show or hide the detail pane (fields, last error, output)"),
        ("h", "history of the selected job"),
        ("a A", "go to what the selected job waits for (enqueued --after) / to the jobs "
                "that wait for it"),
        ("c", "cancel the marked jobs or the selected one; a running one is stopped (SIGTERM, "
               "then SIGKILL) and all end Cancelled, not in the DLQ (asks first)"),
        ("H", "hold the marked jobs or the selected one (pending, retrying, blocked): none "
              "starts until released; on held ones, release them"),
        ("e", "edit the selected job (not started yet): its form, checked before saving"),
        ("z", "pause the selected running job (its processes stopped where it runs, its "
              "timeout's clock too) or resume it (asks first)"),
        ("r", "run the selected job again: retry a dead one, requeue a done or cancelled one"),
        ("d", "delete the selected job (asks first)"),
        ("N", "enqueue a job like the selected one (the form filled in from it)"),
        ("y Y", "copy the selected job's id / command to the clipboard"),
        ("space  u", "mark or unmark a job / unmark all"),
        ("R  D", "retry / delete the marked jobs, or all the filter and tab match "
                 "(asks, saying how many)"),
        ("l", "the selected job's whole log, full screen (see Log viewer)"),
        ("tab", "into the detail pane: j k g G scroll it; tab or esc back to the list"),
    )),
    ("Workers", (
        ("j k", "select a worker"),
        ("enter", "open the selected worker's job in Jobs"),
        ("s  +", "start one more worker (it keeps running after you quit)"),
        ("x  -", "stop the selected worker / the newest one, after its current job"),
        ("X", "stop every worker (asks first)"),
        ("a", "show or hide stopped workers"),
    )),
    ("DLQ", (
        ("r", "retry the selected job now (attempts reset)"),
        ("space", "mark or unmark; u unmarks all"),
        ("R", "retry the marked jobs, or all that match the filter (asks, saying how many)"),
        ("d D", "delete the selected / marked or all matching (asks first)"),
        ("N", "enqueue a job like the selected one"),
        ("y Y", "copy the selected job's id / command"),
        ("enter", "open the job in Jobs: every field and its output (esc comes back)"),
        ("l", "the selected job's whole log, full screen (see Log viewer)"),
    )),
    ("History", (
        ("enter", "open the event's job in Jobs (esc comes back)"),
        ("/", "job:ID state:dead worker:x, or text in the job id or note"),
    )),
    ("Config", (
        ("enter e", "edit the selected key; the value is checked before it is saved"),
    )),
    ("Queues", (
        ("p", "pause the selected queue (running jobs finish) or resume it"),
        ("l", "limit how many of its jobs run at once, on every worker and host"),
        ("enter", "open the queue's jobs in Jobs (filter queue:NAME; esc comes back)"),
    )),
    ("Schedules", (
        ("p", "pause the selected schedule (no ticks fire) or resume it"),
        ("r", "run it now: one job outside its ticks"),
        ("enter", "open the jobs it made in Jobs (filter schedule:NAME; esc comes back)"),
    )),
    ("Trends", (
        ("[ ]", "shorter / longer span (5m, 1h, 24h)"),
        ("j k", "choose the queue the chart shows"),
        ("enter", "its jobs in Jobs (queue:NAME since:SPAN; esc comes back)"),
    )),
    ("Log viewer", (
        ("j k g G", "scroll; at the top or end of what is held, the next part is read"),
        ("f  w", "follow new output on or off / wrap long lines on or off"),
        ("/ n N", "search (no capitals: any case) / next / previous, through the whole log"),
        ("r", "the whole log, then each run in turn"),
        ("p", "open it in $PAGER (less if unset), escaped as shown here"),
        ("esc q", "back"),
        ("1-8", "close the log and go to that view"),
    )),
)


# The help's text width (app.tcss: #dialog.help is 96 wide, less border, padding,
# scrollbar); narrower where the dialog is (HelpScreen.on_resize).
HELP_WIDTH = 84


def help_table(current: str | None, width: int = HELP_WIDTH) -> Text:
    """This view's keys, then those that work everywhere: one Text (a Rich
    grid took 90 ms to draw the first time the dialog opened). No view given:
    every view's."""
    rows: list[tuple[str | Text, Text | str]] = []
    if current is None:
        shown = list(KEYS)
    else:
        shown = [section for section in KEYS if section[0].lower() == current]
        if current in ("jobs", "dlq"):  # `l` opens the log viewer from these
            shown += [section for section in KEYS if section[0] == "Log viewer"]
        shown += [section for section in KEYS if section[0] == "Everywhere"]
    for title, keys in shown:
        rows.append((Text(title, style="bold underline"), ""))
        rows.extend(keys)
        rows.append(("", ""))
    return two_columns(rows, width=width, label_style="bold #ffd75f", gap=2)


def view_title(current: str | None) -> str:
    names = {"dlq": "DLQ"}
    return names.get(current or "", (current or "every view").capitalize())


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close"),
                Binding("j,down", "scroll(1)", "Down", show=False),
                Binding("k,up", "scroll(-1)", "Up", show=False),
                Binding("pagedown,space", "page(1)", "Page down", show=False),
                Binding("pageup", "page(-1)", "Page up", show=False)]

    def __init__(self, current: str | None = None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="help") as box:
            box.border_title = f"Keys: {view_title(self.current)}"
            if console_of(self).read_only:  # the keys are listed; they are refused
                box.border_title += " · READ-ONLY: keys that change things are off"
            box.border_subtitle = "esc, ? or q closes · j/k scroll"
            yield Static(help_table(self.current), id="keys")

    def on_resize(self) -> None:
        """Wrapped to the dialog's width (narrower than HELP_WIDTH at 80 columns:
        Textual would wrap the wrapped lines again, under the keys)."""
        keys = self.query_one("#keys", Static)
        width = min(HELP_WIDTH, keys.size.width - 1) if keys.size.width else HELP_WIDTH
        if width != getattr(self, "_width", None):
            self._width = width
            keys.update(help_table(self.current, width))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, lines: int) -> None:
        self.query_one("#dialog", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_page(self, pages: int) -> None:
        box = self.query_one("#dialog", VerticalScroll)
        box.scroll_relative(y=pages * max(1, box.size.height - 1), animate=False)
