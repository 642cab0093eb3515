"""The header strip: jobs per state, live workers and a throughput sparkline."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from queuectl_tui.console.reads import Summary
from queuectl_tui.console.formatting import STATE_STYLE
from queuectl_tui.console.widgets.repaint import show

SHOWN = (("pending", "pending"), ("blocked", "blocked"), ("held", "held"),
         ("processing", "running"), ("failed", "retrying"), ("dead", "dead"),
         ("completed", "done"), ("cancelled", "cancelled"))
ONLY_IF_ANY = ("blocked", "held")  # shown when there are some: the strip stays one line


def short(n: int) -> str:
    """1,234 / 12.3k / 960k / 1.2M: counts that keep the strip on one line."""
    if n < 10_000:
        return f"{n:,}"
    if n < 100_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


SHORT_LABELS = {"pending": "pend", "running": "run", "retrying": "retry", "cancelled": "canc",
                "blocked": "blkd"}


def counts_text(summary: Summary | None, problem: str | None, *, narrow: bool = False,
                width: int | None = None, read_only: bool = False) -> Text:
    """The counts, whole: when they do not fit `width`, the labels are
    shortened, then states with none are left out (the workers stay named).
    A read-only console says so first, at any width."""
    text = _counts(summary, problem, narrow, read_only, zeros=True, short_labels=False)
    if width is None or problem or text.cell_len <= width:
        return text
    text = _counts(summary, problem, narrow, read_only, zeros=True, short_labels=True)
    if text.cell_len <= width:
        return text
    return _counts(summary, problem, narrow, read_only, zeros=False, short_labels=True)


def _counts(summary: Summary | None, problem: str | None, narrow: bool, read_only: bool, *,
            zeros: bool, short_labels: bool) -> Text:
    text = Text()
    if not narrow:
        text.append(" queuectl ", style="bold reverse")
    if read_only:
        text.append(" READ-ONLY ", style="bold #000000 on #ffd75f")
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
        if (state in ONLY_IF_ANY or not zeros) and not n:
            continue
        text.append("  " if text.plain or not narrow else " ")
        text.append(short(n), style=STATE_STYLE[state] if n and not problem else "dim")
        label = SHORT_LABELS.get(label, label) if short_labels else label
        text.append(f" {label}", style="" if n and not problem else "dim")
    text.append("  " if short_labels else "   ")
    workers = summary.live_workers
    text.append(f"{workers}", style=STATE_STYLE["idle"] if workers else "bold #ff875f")
    text.append(" worker" + ("" if workers == 1 else "s"))
    return text


class StatusStrip(Horizontal):
    """Counts on the left, the finished-jobs sparkline and rate on the right."""

    def __init__(self, *, read_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        yield Static(counts_text(None, None, read_only=self.read_only), id="counts")
        yield Sparkline([0] * 30, id="spark")
        yield Static("", id="rate")

    _last: tuple[Summary | None, str | None] = (None, None)

    def on_resize(self) -> None:
        self.show(*self._last)  # what fits beside the counts depends on the width

    @property
    def narrow(self) -> bool:
        return self.size.width < 110

    def show(self, summary: Summary | None, problem: str | None) -> None:
        self._last = (summary, problem)
        spark = self.query_one("#spark", Sparkline)
        room = self.size.width - 14  # less the rate
        # The sparkline gives way before a count's label does.
        wide = not self.narrow and \
            counts_text(summary, problem, read_only=self.read_only).cell_len <= room - 32
        spark.display = wide
        room -= 32 if wide else 0
        show(self.query_one("#counts", Static),
             counts_text(summary, problem, narrow=self.narrow, width=room or None,
                         read_only=self.read_only))
        if summary is not None:
            self.query_one("#spark", Sparkline).data = list(summary.throughput)
            show(self.query_one("#rate", Static),
                 Text(f" {per_minute(summary.rate)} done ".rjust(14), style="bold"))


def per_minute(rate: float) -> str:
    """Jobs a second as a rate a minute, always in that one unit: '0.5/min',
    '12/min', '60.0k/min' (it flipped between /s and /min)."""
    n = rate * 60
    return f"{n:.1f}/min" if n < 10 else f"{short(round(n))}/min"
