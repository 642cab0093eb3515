"""The log viewer's body: lines drawn one screen row at a time, wrapped or not.

A ScrollView draws only the rows on screen (`render_line`), so a window of
tens of thousands of lines costs nothing to scroll. The lines arrive escaped
(`safe_text.output_line`); matches of a search are highlighted, and the line
of the current match is marked.
"""

from __future__ import annotations

import bisect
from typing import Callable

from rich.cells import cell_len, chop_cells
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

MATCH = Style(color="black", bgcolor="#ffd75f")
MARKED = Style(bgcolor="#303a50")


class LogView(ScrollView, can_focus=True):
    """Rows of a log; posts `Edge` when scrolled to its top or bottom so the
    screen can read more of the file there."""

    BINDINGS = [
        Binding("j,down", "scroll_down", "Down", show=False),
        Binding("k,up", "scroll_up", "Up", show=False),
        Binding("h,left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("space,pagedown,ctrl+f", "page_down", "Page down", show=False),
        Binding("b,pageup,ctrl+b", "page_up", "Page up", show=False),
    ]

    class Edge(Message):
        """Scrolled to the top (`end` False) or the bottom of what is held."""

        def __init__(self, end: bool) -> None:
            super().__init__()
            self.end = end

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lines: list[str] = []
        self.wrap = False
        self.needle = ""
        self.marked: int | None = None  # the line of the current search match
        self._rows: list[tuple[int, str]] = []  # wrapped: (line, piece) per screen row
        self._first_row: list[int] = []  # wrapped: each line's first row
        self._wrapped_at = 0
        self._stick_end = False  # placed at the end: stays there through a resize
        self._want: int | None = None  # the row placed at the top, until the reader moves

    # ------------------------------------------------------------ content

    def set_lines(self, lines: list[str], top_line: int | None = None,
                  end: bool = False) -> None:
        """Show `lines`, with line `top_line` at the top (None: keep the row), or
        the last line at the bottom (`end`)."""
        self.lines = lines
        self._wrapped_at = 0
        self._layout()
        if end:
            self.place(end=True)
        elif top_line is not None:
            self.place(self.row_of(top_line))
        self.refresh()

    def place(self, row: int = 0, end: bool = False) -> None:
        """Scroll to `row` (or the end) now and again once laid out: before its
        first layout the view has no height, and a scroll is clamped to nothing."""
        self._stick_end, self._want = end, None if end else row

        def go() -> None:  # forced: the scrollbar may not be shown yet for new lines
            if end:
                self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
            else:
                self.scroll_to(y=row, animate=False, immediate=True, force=True)
        go()
        self.call_after_refresh(go)

    def set_wrap(self, wrap: bool) -> None:
        top = self.top_line()
        self.wrap = wrap
        self._wrapped_at = 0
        self._layout()
        self.scroll_to(x=0, animate=False, immediate=True)
        self.place(self.row_of(top))
        self.refresh()

    def _layout(self) -> None:
        width = max(1, self.scrollable_content_region.width or self.size.width or 80)
        if self.wrap:
            if self._wrapped_at != width:
                self._rows, self._first_row = [], []
                for i, line in enumerate(self.lines):
                    self._first_row.append(len(self._rows))
                    pieces = chop_cells(line, width) if cell_len(line) > width else [line]
                    self._rows.extend((i, piece) for piece in pieces or [""])
                self._wrapped_at = width
            self.virtual_size = Size(width, len(self._rows))
        else:
            widest = max((cell_len(line) for line in self.lines), default=0)
            self.virtual_size = Size(widest, len(self.lines))

    def on_resize(self) -> None:
        """Laid out at a new size: keep the end, the row asked for (a scroll
        before the first layout was clamped), or the line at the top."""
        top = self.top_line()
        self._layout()
        if self._stick_end:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        elif self._want is not None:
            self.scroll_to(y=self._want, animate=False, immediate=True)
        else:
            self.scroll_to(y=self.row_of(top), animate=False, immediate=True)

    # ------------------------------------------------------------ positions

    @property
    def row_count(self) -> int:
        return len(self._rows) if self.wrap else len(self.lines)

    def row_of(self, line: int) -> int:
        if not self.lines:
            return 0
        line = max(0, min(line, len(self.lines) - 1))
        return self._first_row[line] if self.wrap and self._first_row else line

    def line_of(self, row: int) -> int:
        if self.wrap and self._first_row:
            return max(0, bisect.bisect_right(self._first_row, row) - 1)
        return max(0, min(row, len(self.lines) - 1))

    def top_line(self) -> int:
        return self.line_of(int(self.scroll_y))

    def show_line(self, line: int) -> None:
        """Scroll so `line` is in view, a few rows below the top."""
        self.place(max(0, self.row_of(line) - 3))

    @property
    def at_bottom(self) -> bool:
        return self.scroll_y >= self.max_scroll_y

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new != old and self.lines:
            if new <= 0:
                self.post_message(self.Edge(end=False))
            elif new >= self.max_scroll_y:
                self.post_message(self.Edge(end=True))

    # ------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = int(self.scroll_y) + y
        style = self.rich_style
        if row >= self.row_count:
            return Strip.blank(width, style)
        line, text = self._rows[row] if self.wrap else (row, self.lines[row])
        shown = Text(text, end="")
        if line == self.marked:
            shown.stylize(MARKED)
        if self.needle:
            folded = text.lower() if self.needle == self.needle.lower() else text
            at = folded.find(self.needle)
            while at >= 0:
                shown.stylize(MATCH, at, at + len(self.needle))
                at = folded.find(self.needle, at + len(self.needle))
        strip = Strip(list(shown.render(self.app.console)))
        pad = style + MARKED if line == self.marked else style  # the marked row, whole
        if self.wrap:
            return strip.extend_cell_length(width, pad).apply_style(style)
        x = int(self.scroll_x)
        return strip.crop_extend(x, x + width, pad).apply_style(style)

    def _edge_or(self, end: bool, scroll: Callable[[], None]) -> None:
        """At the edge of what is held a key asks for more (no scroll happens,
        so watch_scroll_y would not see it); elsewhere it scrolls."""
        self._stick_end, self._want = False, None  # the reader moves: no anchor now
        if self.lines and (self.at_bottom if end else self.scroll_y <= 0):
            self.post_message(self.Edge(end=end))
        else:
            scroll()

    def action_scroll_down(self) -> None:
        self._edge_or(True, super().action_scroll_down)

    def action_scroll_up(self) -> None:
        self._edge_or(False, super().action_scroll_up)

    def action_page_down(self) -> None:
        self._edge_or(True, super().action_page_down)

    def action_page_up(self) -> None:
        self._edge_or(False, super().action_page_up)

    def action_scroll_right(self) -> None:
        self.scroll_relative(x=8, animate=False)

    def action_scroll_left(self) -> None:
        self.scroll_relative(x=-8, animate=False)

