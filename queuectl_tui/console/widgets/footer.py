"""The key footer, rebuilt only when the keys it shows change; `? Help` and
`q Quit` always fit (a narrow terminal drops the view's last keys instead)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from textual import events
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.screen import Screen


class Footer(TextualFooter):
    """Textual's footer rebuilds every key, and so lays the whole screen out
    again (30-40 ms a time at 140x40 beside a busy pool), whenever the bindings
    may have changed: on every focus change, so a state tab that empties the
    table (it loses the focus) and the next that fills it again cost two. Here
    it rebuilds only when what it would show differs from what it shows."""

    _shown: tuple | None = None
    KEEP = ("question_mark", "q")  # help and quit: in every view, at any width

    def compose(self) -> Iterable[Any]:
        """Textual's keys, less the view's last ones while they would push
        `? Help` and `q Quit` off the right edge (the help lists every key)."""
        items = list(super().compose())
        width = self.app.size.width
        cost = [(len(item.key_display) + len(item.description) + 2)
                if isinstance(item, FooterKey) else 0 for item in items]
        kept = sum(c for item, c in zip(items, cost)
                   if not isinstance(item, FooterKey) or item.key in self.KEEP)
        for item, c in zip(items, cost):
            if not isinstance(item, FooterKey) or item.key in self.KEEP:
                yield item
            elif kept + c <= width:
                kept += c
                yield item

    def on_resize(self, event: events.Resize) -> None:
        if self._shown is not None and self._shown[0] != self.app.size.width:
            self._shown = None
            self.call_after_refresh(self.refresh_bindings_for_width)

    def refresh_bindings_for_width(self) -> None:
        if self.is_attached:
            self.bindings_changed(self.screen)

    def bindings_changed(self, screen: Screen) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = self._keys(screen)
            if shown == self._shown:
                return
            self._shown = shown
        super().bindings_changed(screen)

    def _keys(self, screen: Screen) -> tuple:
        return (screen.app.size.width,) + tuple(
            (key, binding.description, binding.action, binding.group, enabled, tooltip)
            for key, (_, binding, enabled, tooltip) in screen.active_bindings.items()
            if binding.show or key == screen.app.COMMAND_PALETTE_BINDING)
