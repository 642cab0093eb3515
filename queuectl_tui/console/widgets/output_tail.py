"""The detail pane's output: the last lines of a job's output that fit, escaped.

A short tail, not a reader: it shows the end of the output wrapped to its
width under a title line that names where it comes from and the key of the
full log viewer (`l`). Everything a job printed goes through
`safe_text.output_lines` (the same `printable` as `queuectl show`) before it
reaches the terminal.
"""

from __future__ import annotations

from rich.cells import cell_len, chop_cells
from rich.text import Text
from textual.widget import Widget

from queuectl_tui.safe_text import output_lines

KEEP_CHARS = 32768  # output held: far more than any pane shows, bounded on any job


class OutputTail(Widget):
    """The end of a job's output, wrapped (never clipped), the newest line last."""

    DEFAULT_CSS = """
    OutputTail { text-wrap: nowrap; text-overflow: clip; }
    """
    can_focus = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.raw = ""  # output as printed (escaped only when drawn), at most KEEP_CHARS
        self.title = "output"
        self.placeholder = ""  # shown when there is no output

    @property
    def lines(self) -> list[str]:
        """The output's lines as shown: carriage returns applied, escaped."""
        lines = output_lines(self.raw) if self.raw else []
        if lines and lines[-1] == "":
            lines.pop()  # the newline that ends the last line opens no line of its own
        return lines

    def clear(self) -> None:
        self.set_text("")

    def set_text(self, text: str) -> None:
        """Show `text` in place of what was shown."""
        text = _last_lines(text)
        if text != self.raw:
            self.raw = text
            self.refresh()

    def append(self, text: str, *, after_gap: bool = False) -> None:
        """Add newly printed output. `after_gap`: it does not follow what is shown
        (it starts somewhere in the log, maybe mid-line): it replaces it, from its
        first whole line on."""
        if after_gap:
            self.raw = ""
            text = text.partition("\n")[2] if "\n" in text else text
        if text:
            self.raw = _last_lines(self.raw + text)
            self.refresh()

    def set_title(self, title: str, placeholder: str = "") -> None:
        if (title, placeholder) != (self.title, self.placeholder):
            self.title, self.placeholder = title, placeholder
            self.refresh()

    def render(self) -> Text:
        width, height = self.content_region.width, self.content_region.height
        out = Text(no_wrap=True, overflow="crop", end="")
        out.append(self.title, style="bold #87afd7")
        out.append(" · l: full log", style="dim")
        if height <= 1 or width <= 0:
            return out
        rows = self.tail_rows(width, height - 1)
        if not rows:
            out.append("\n" + self.placeholder, style="dim")
        for row in rows:
            out.append("\n" + row)
        return out

    def tail_rows(self, width: int, count: int) -> list[str]:
        """The last `count` screen rows of the output at `width` columns, long
        lines folded onto the next rows."""
        rows: list[str] = []
        for line in reversed(self.lines):
            folded = chop_cells(line, width) if cell_len(line) > width else [line]
            rows[:0] = folded
            if len(rows) >= count:
                break
        return rows[-count:]


def _last_lines(text: str) -> str:
    """At most KEEP_CHARS of `text`'s end, from a whole line when it is cut."""
    if len(text) <= KEEP_CHARS:
        return text
    text = text[-KEEP_CHARS:]
    return text.partition("\n")[2] if "\n" in text else text
