"""The header strip: jobs per state, live workers and a throughput sparkline."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from queuectl_tui.console.data import Summary
from queuectl_tui.console.formatting import STATE_STYLE
from queuectl_tui.console.widgets.repaint import show

SHOWN = (("pending", "pending"), ("blocked", "blocked"), ("processing", "running"),
         ("failed", "retrying"), ("dead", "dead"), ("completed", "done"),
         ("cancelled", "cancelled"))
ONLY_IF_ANY = ("blocked",)  # shown when there are some: the strip stays one line


def short(n: int) -> str:
    """1,234 / 12.3k / 960k / 1.2M: counts that keep the strip on one line."""
    if n < 10_000:
        return f"{n:,}"
    if n < 100_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


def counts_text(summary: Summary | None, problem: str | None, *, narrow: bool = False) -> Text:
    text = Text()
    if not narrow:
        text.append(" queuectl ", style="bold reverse")
    if problem and summary is None:
        # The view's own box says it whole: a long message here was cut to nothing.
        text.append("  ⚠ cannot read the queue", style="bold #ff5f5f")
        return text
    if problem:  # the counts as they were; the notice above the footer says why
        text.append("  ⚠ stale", style="bold #ff5f5f")
    if summary is None:
        text.append("  loading…", style="dim")
        return text
    if not summary.counted:  # a big queue's first full count is on its way
        text.append("  counting jobs…", style="dim")
    for state, label in SHOWN if summary.counted else ():
        n = summary.counts.get(state, 0)
        if state in ONLY_IF_ANY and not n:
            continue
        text.append("  " if text.plain or not narrow else " ")
        text.append(short(n), style=STATE_STYLE[state] if n and not problem else "dim")
        text.append(f" {label}", style="" if n and not problem else "dim")
    text.append("   ")
    workers = summary.live_workers
    text.append(f"{workers}", style=STATE_STYLE["idle"] if workers else "bold #ff875f")
    text.append(" worker" + ("" if workers == 1 else "s"))
    return text


class StatusStrip(Horizontal):
    """Counts on the left, the finished-jobs sparkline and rate on the right."""

    def compose(self) -> ComposeResult:
        yield Static(counts_text(None, None), id="counts")
        yield Sparkline([0] * 30, id="spark")
        yield Static("", id="rate")

    def on_resize(self) -> None:
        self.query_one("#spark", Sparkline).display = not self.narrow

    @property
    def narrow(self) -> bool:
        return self.size.width < 110

    def show(self, summary: Summary | None, problem: str | None) -> None:
        show(self.query_one("#counts", Static), counts_text(summary, problem, narrow=self.narrow))
        if summary is not None:
            self.query_one("#spark", Sparkline).data = list(summary.throughput)
            rate = summary.rate
            shown = f"{rate:.1f}/s" if rate >= 0.1 or rate == 0 else f"{rate * 60:.1f}/min"
            show(self.query_one("#rate", Static), Text(f" {shown} done ".rjust(14), style="bold"))
