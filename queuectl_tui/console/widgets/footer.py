"""The key footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Footer as TextualFooter

if TYPE_CHECKING:
    from textual.screen import Screen


class Footer(TextualFooter):
    """Textual's footer rebuilds every key, and so lays the whole screen out
    again (30-40 ms a time at 140x40 beside a busy pool), whenever the bindings
    may have changed: on every focus change, so a state tab that empties the
    table (it loses the focus) and the next that fills it again cost two. Here
    it rebuilds only when what it would show differs from what it shows."""

    _shown: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = self._keys(screen)
            if shown == self._shown:
                return
            self._shown = shown
        super().bindings_changed(screen)

    def _keys(self, screen: Screen) -> tuple:
        return tuple((key, binding.description, binding.action, binding.group, enabled, tooltip)
                     for key, (_, binding, enabled, tooltip) in screen.active_bindings.items()
                     if binding.show or key == screen.app.COMMAND_PALETTE_BINDING)
