"""A DataTable that holds only the rows on screen, over a keyset window of a big list.

Textual's DataTable keeps every row it is given (10,000 rows cost 0.8 s to
fill), so this table is never given more than fit. The owner fetches a
*buffer* of a few pages around the cursor with a keyset query; the table
shows the slice that fits, moves the cursor inside the buffer at once, and
asks for a new buffer (message `WindowNeeded`) when the cursor nears its edge.
A refresh replaces the buffer and the table keeps the cursor on the same row
(by key) at the same height on screen, so live updates never make it jump.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.message import Message
from textual.widgets import DataTable

from queuectl_tui.engine import END, START, Window


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None  # None: takes the room that is left
    hide_below: int = 0  # left out when the table is narrower than this
    grow_to: int = 0  # widen up to this to show the visible rows whole (ids)
    cut_middle: bool = False  # cut as "every-mi…1434Z": ids differ at their ends


MIN_FLEX = 12  # a flexible column (a command) gives way to ids down to this width


def cut(text: Text, width: int, middle: bool = False) -> Text:
    """`text` in `width` cells, an ellipsis marking what was cut (at the end,
    or in the middle for ids, whose ends tell them apart)."""
    if text.cell_len <= width:
        return text
    if width <= 1:
        return Text("…"[:width])
    if middle:
        tail = (width - 1) // 2
        head = width - 1 - tail
        return text[:head] + Text("…") + text[len(text) - tail:]
    text = text.copy()
    text.truncate(width, overflow="ellipsis")
    return text


class WindowTable(DataTable):
    """Rows are dicts; `key_of(row)` is its keyset anchor, `row_id(row)` its stable name."""

    BINDINGS = [
        Binding("j,down", "move(1)", "Down", show=False),
        Binding("k,up", "move(-1)", "Up", show=False),
        Binding("pagedown,ctrl+d", "page(1)", "Page down", show=False),
        Binding("pageup,ctrl+u", "page(-1)", "Page up", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("enter", "choose", "Open", show=False),
    ]
    DEFAULT_CSS = """
    WindowTable { overflow: hidden hidden; height: 1fr; }
    """

    class WindowNeeded(Message):
        """The cursor nears the buffer's edge (or the list was reset): fetch around it."""

        def __init__(self, table: "WindowTable") -> None:
            super().__init__()
            self.table = table

    class Chosen(Message):
        """Enter on a row: the screen decides what opening it means."""

        def __init__(self, table: "WindowTable", row: dict[str, Any]) -> None:
            super().__init__()
            self.table = table
            self.row = row

    class CursorMoved(Message):
        def __init__(self, table: "WindowTable", row: dict[str, Any] | None) -> None:
            super().__init__()
            self.table = table
            self.row = row

    def __init__(self, columns: list[Column], render_row: Callable[[dict[str, Any]], list[Any]],
                 key_of: Callable[[dict[str, Any]], tuple], row_id: Callable[[dict[str, Any]], str],
                 **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.spec = columns
        self.render_row = render_row
        self.key_of = key_of
        self.row_id = row_id
        self.buffer: list[dict[str, Any]] = []
        self.more_before = False
        self.more_after = False
        self.cursor = 0
        self.top = 0
        self.loaded = False
        self._anchor: Any = START  # where the next fetch is centred
        self._shown_ids: list[str] = []
        self._width = 0
        self._fit: dict[str, int] = {}  # grown widths of `grow_to` columns
        self._shown_cols: list[int] = []
        self._cells_drawn: LRUCache[tuple, list[list[Segment]]] = LRUCache(4096)

    # ------------------------------------------------------------ what to fetch

    @property
    def page(self) -> int:
        height = self.size.height - 1 if self.show_header else self.size.height
        return max(1, height if height > 0 else 20)

    def request(self) -> tuple[Any, int, int]:
        """(anchor, rows before, rows after) for the next fetch: two pages each side."""
        span = self.page * 2
        if self._anchor is END:
            return END, span * 2, 0
        return self._anchor, span, span + self.page

    @property
    def current(self) -> dict[str, Any] | None:
        if 0 <= self.cursor < len(self.buffer):
            return self.buffer[self.cursor]
        return None

    def reset(self, to: Any = START) -> None:
        """Forget the buffer (new filter or sort): the next window starts at `to`."""
        self._anchor = to
        self.buffer, self.cursor, self.top = [], 0, 0
        self.more_before = self.more_after = False
        self.loaded = False
        self.post_message(self.WindowNeeded(self))

    # ------------------------------------------------------------ new data

    def show_window(self, window: Window) -> None:
        """Replace the buffer, keeping the cursor on the same row and at the same height."""
        old = self.current
        offset = self.cursor - self.top
        # Watching the head of the list: new rows push in from the top, as in a log.
        pinned = self.top == 0 and not self.more_before and self.loaded
        self.buffer = window.rows
        self.more_before, self.more_after = window.more_before, window.more_after
        index = self.landing(window, self.row_id(old) if old is not None else None,
                             self.row_id, self._anchor is END)
        if self._anchor is END:
            offset = self.page - 1
        self.cursor = index
        self.top = 0 if pinned else max(0, self.cursor - max(0, offset))
        if self._anchor is END or self._anchor is START:
            self._anchor = self.key_of(self.current) if self.current else START
        self.loaded = True
        self._clamp_top()
        self.render_rows()

    @staticmethod
    def landing(window: Window, wanted: str | None, row_id: Callable[[dict[str, Any]], str],
                at_end: bool) -> int:
        """Where the cursor lands in a new window: on the same row (by id) if it is
        still there, else at the anchor's place; the last row for an END fetch.
        The owner's database thread calls this too, to read the detail of the row
        the cursor will be on in the same trip as the rows."""
        if at_end:
            index = len(window.rows) - 1
        else:
            index = next((i for i, r in enumerate(window.rows) if row_id(r) == wanted),
                         None) if wanted is not None else None
            if index is None:  # the row left (state changed, deleted): stay at its place
                index = window.at
        return max(0, min(index, len(window.rows) - 1))

    def landing_args(self) -> tuple[str | None, bool]:
        """(the current row's id, fetching the end?) for `landing` off the UI thread."""
        current = self.current
        return (self.row_id(current) if current is not None else None), self._anchor is END

    def remove_ids(self, ids: set[str]) -> None:
        """Drop rows at once (the action is on its way to the database)."""
        keep = [r for r in self.buffer if self.row_id(r) not in ids]
        if len(keep) == len(self.buffer):
            return
        before = sum(1 for r in self.buffer[:self.cursor] if self.row_id(r) in ids)
        self.buffer = keep
        self.cursor = max(0, min(self.cursor - before, len(keep) - 1))
        if self.current is not None:
            self._anchor = self.key_of(self.current)
        self._clamp_top()
        self.render_rows()

    # ------------------------------------------------------------ moving

    def action_move(self, delta: int) -> None:
        self._move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.top += direction * self.page
        self._move_to(self.cursor + direction * self.page)

    def action_choose(self) -> None:
        if self.current is not None:
            self.post_message(self.Chosen(self, self.current))

    def action_first(self) -> None:
        self.reset(START)

    def action_last(self) -> None:
        self.reset(END)

    def _move_to(self, index: int) -> None:
        if not self.buffer:
            return
        self.cursor = max(0, min(index, len(self.buffer) - 1))
        self._clamp_top()
        self._anchor = self.key_of(self.buffer[self.cursor])
        self.render_rows()
        self.post_message(self.CursorMoved(self, self.current))
        near_end = len(self.buffer) - 1 - self.cursor < self.page and self.more_after
        near_start = self.cursor < self.page and self.more_before
        if near_end or near_start:
            self.post_message(self.WindowNeeded(self))

    def _clamp_top(self) -> None:
        page = self.page
        if self.cursor < self.top:
            self.top = self.cursor
        if self.cursor >= self.top + page:
            self.top = self.cursor - page + 1
        self.top = max(0, min(self.top, max(0, len(self.buffer) - page)))

    def _on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.prevent_default()
        self.action_move(3)

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.prevent_default()
        self.action_move(-3)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """A click moved DataTable's own cursor: follow it (our own moves are no-ops)."""
        event.stop()
        live = self.cursor_row
        if live != self.cursor - self.top and 0 <= self.top + live < len(self.buffer):
            self._move_to(self.top + live)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()

    # ------------------------------------------------------------ drawing

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        """A body cell drawn as one line of text, cached by what it shows.

        DataTable draws every cell through Rich's full layout (Padding, Styled,
        wrapping) and forgets them all whenever any cell changes, so the live
        refresh, which changes a few times a second ("12s ago"), redrew every cell
        each second: 40-60 ms a frame, the largest cost behind a key. Cells here
        are one line, plain text (a str is never read as markup, so a command
        such as `grep [a-z]` shows whole) or a Text with its styles."""
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width,
                                        cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        value = self._data[row_key][column_key]
        shown = value if isinstance(value, str) else (
            (value.plain, value.style, tuple(value.spans)) if isinstance(value, Text)
            else str(value))
        key = (row_index, row_key, column_key, shown, base_style, width, cursor, hover,
               self._show_hover_cursor, self._pseudo_class_state)
        lines = self._cells_drawn.get(key)
        if lines is None:
            lines = [self._draw_cell(value, row_index, column_index, base_style, width,
                                     cursor, hover)]
            self._cells_drawn[key] = lines
        return lines

    def _draw_cell(self, value: Any, row_index: int, column_index: int, base_style: Style,
                   width: int, cursor: bool, hover: bool) -> list[Segment]:
        component, post = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        text = value.copy() if isinstance(value, Text) else Text(str(value))
        text.end = ""
        room = max(0, width - 2 * self.cell_padding)
        middle = 0 <= column_index < len(self._shown_cols) \
            and self.spec[self._shown_cols[column_index]].cut_middle
        text = cut(text, room, middle)
        text.truncate(room, overflow="crop", pad=True)
        console = self.app.console
        inner = text.render(console)  # the spans' styles; the Text's own goes under them
        if text.style:
            inner = Segment.apply_style(inner, console.get_style(text.style))
        pad = Segment(" " * self.cell_padding)
        pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) \
            + component
        return list(Segment.apply_style([pad, *inner, pad], pre, post))

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self._build_columns()
        self._clamp_top()
        self.render_rows(force=True)
        short = len(self.buffer) < self.page * 2
        if self.loaded and short and (self.more_after or self.more_before):
            self.post_message(self.WindowNeeded(self))

    def _build_columns(self) -> None:
        self._shown_cols = [i for i, c in enumerate(self.spec) if self._width >= c.hide_below]
        shown = [self.spec[i] for i in self._shown_cols]
        fixed = sum(self._fit.get(c.key, c.width or 0) + 2 for c in shown)
        flexible = [c for c in shown if c.width is None]
        room = max(8, (self._width - fixed - 2) // max(1, len(flexible))) if flexible else 0
        self.clear(columns=True)
        self._shown_ids = []
        for c in shown:
            self.add_column(Text(c.label, style="bold"),
                            width=self._fit.get(c.key, c.width) or room, key=c.key)

    def _fit_to(self, rows: list[dict[str, Any]]) -> bool:
        """Widen (or narrow back) the growable columns to the rows on screen, as
        long as each flexible column keeps MIN_FLEX cells: an id shown whole
        matters more than more of a command. True if the widths changed."""
        shown = [self.spec[i] for i in self._shown_cols]
        growable = [(pos, c) for pos, c in enumerate(shown) if c.grow_to and c.width]
        if not growable:
            return False
        spare = self._width - 2 - sum((c.width or 0) + 2 for c in shown) \
            - MIN_FLEX * sum(1 for c in shown if c.width is None)
        cells = [self._cells(row) for row in rows]
        fit: dict[str, int] = {}
        for pos, c in growable:
            longest = max((len(v.plain if isinstance(v, Text) else str(v)) for v in
                           (line[pos] for line in cells)), default=0)
            extra = max(0, min(longest, c.grow_to) - c.width)
            extra = min(extra, max(0, spare))
            spare -= extra
            if extra:
                fit[c.key] = c.width + extra
        if fit == self._fit:
            return False
        self._fit = fit
        return True

    def _cells(self, row: dict[str, Any]) -> list[Any]:
        """The shown columns' cells, each a Text: DataTable measures a str cell as
        markup, so a command holding `[/]` raised and `[b]` was read as bold."""
        values = self.render_row(row)
        return [Text(v) if isinstance(v, str) else v
                for v in (values[i] for i in self._shown_cols)]

    def render_rows(self, force: bool = False) -> None:
        if not self.columns:
            return
        rows = self.buffer[self.top:self.top + self.page]
        ids = [self.row_id(r) for r in rows]
        if self._fit_to(rows):
            self._build_columns()
        with self.app.batch_update():
            if ids == self._shown_ids and not force:
                keys = [self.spec[i].key for i in self._shown_cols]
                for rid, row in zip(ids, rows):
                    for key, value in zip(keys, self._cells(row)):
                        if self.get_cell(rid, key) != value:
                            self.update_cell(rid, key, value)
            else:
                self.clear()
                for rid, row in zip(ids, rows):
                    self.add_row(*self._cells(row), key=rid)
                self._shown_ids = ids
            if rows:
                self.move_cursor(row=self.cursor - self.top, animate=False, scroll=False)
