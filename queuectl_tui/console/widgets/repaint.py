"""Updating a Static without making the whole screen lay itself out again.

`Static.update` asks for a layout pass by default, and a layout pass in
Textual re-arranges and repaints the whole screen: with a live refresh
updating the header, the tab labels and the status line every second, that was
most of the console's CPU, and keys waited behind it. Here a widget is only
touched when what it shows changed, and one whose size the stylesheet fixes
(one line, a fixed or fractional width) is repainted without layout.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Static


def show(widget: Static, content: Any, *, key: Any = None, fixed_size: bool = True) -> bool:
    """Show `content` if it differs from what is shown (compared by `key`, else by
    the content itself: rich Text compares by text and styles). Returns True if
    it repainted. `fixed_size=False` for a widget whose height follows its text."""
    marker = content if key is None else key
    if getattr(widget, "_queuectl_shown", None) == marker:
        return False
    widget._queuectl_shown = marker  # type: ignore[attr-defined]
    widget.update(content, layout=not fixed_size)
    return True
