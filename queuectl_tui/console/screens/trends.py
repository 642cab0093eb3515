"""Trends: finished runs and failures over time, and run durations, per queue.

One row per queue (and one for every queue together) with its totals, p50/p95
and a sparkline; below, a chart of the selected row's runs per bucket (done and
failed, stacked). `[` and `]` switch the span (5 minutes, 1 hour, 24 hours).

The figures come from engine/trends.py on the console's slow thread, read
again only while this view is shown and at most every SPAN_MAX_AGE seconds for
the span shown; a key that switches span shows the last figures of that span
at once (or "reading…") and asks for new ones.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from queuectl_tui.clock import iso
from queuectl_tui.console import reads
from queuectl_tui.console.reads import Summary
from queuectl_tui.console.formatting import span as took
from queuectl_tui.console.screens.keyed_table import KeyedTableView
from queuectl_tui.console.screens.queues import sparkline
from queuectl_tui.console.widgets.repaint import show
from queuectl_tui.engine import TREND_MAX_ATTEMPTS, TREND_SPANS, Queue, QueueTrend, Trends

ALL = "(all)"  # the row of every queue together: sorts first, and no queue name has "("
SPAN_MAX_AGE = {"5m": 5.0, "1h": 15.0, "24h": 60.0}  # seconds before a span is read again
SPAN_WORDS = {"5m": "last 5 minutes", "1h": "last hour", "24h": "last 24 hours"}
BUCKET_WORDS = {"5m": "10 s", "1h": "minute", "24h": "30 min"}
TICK_S = {"5m": 60.0, "1h": 900.0, "24h": 6 * 3600.0}  # a label on the chart's axis this often
SPARK_WIDTH = 16
# 63 columns of cells plus padding: the whole row fits 80 columns.
COLUMNS = (("name", "QUEUE", 14), ("done", "DONE", 7), ("failed", "FAILED", 6),
           ("rate", "FAIL%", 6), ("p50", "P50", 7), ("p95", "P95", 7),
           ("spark", "RUNS", SPARK_WIDTH))


def _short(seconds: float) -> str:
    """90 -> 90s, 900 -> 15m, 21600 -> 6h: whole units for axis labels."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _whole_ticks(top: int) -> list[int]:
    """At most five whole-number marks from 0 to `top` (counts have no fractions)."""
    step = max(1, -(-top // 4))
    return list(range(0, top + 1, step))


def squeeze(counts: list[int], width: int) -> list[int]:
    """Counts summed into at most `width` groups of neighbours, oldest first."""
    if len(counts) <= width:
        return counts
    step = -(-len(counts) // width)
    return [sum(counts[i:i + step]) for i in range(0, len(counts), step)]


def shown_name(name: str) -> str:
    return "all queues" if name == ALL else name


def trend_cells(row: dict[str, Any]) -> dict[str, Any]:
    t: QueueTrend = row["trend"]
    done, failed = t.done, t.failures
    ended = done + failed
    runs = [c + f for c, f in zip(t.completed, t.failed)]
    return {
        "name": shown_name(row["name"]),
        "done": f"{done:,}",
        "failed": Text(f"{failed:,}", style="#ff875f" if failed else "", justify="left"),
        "rate": f"{100 * failed / ended:.0f}%" if ended else "-",
        "p50": took(t.p50) if t.p50 is not None else "-",
        "p95": took(t.p95) if t.p95 is not None else "-",
        "spark": Text(sparkline(squeeze(runs, SPARK_WIDTH)), style="#5fafff", justify="left"),
    }


class TrendsScreen(KeyedTableView):
    VIEW = "trends"
    COLUMNS = COLUMNS
    DEFAULT_CSS = """
    TrendsScreen #trends-table { height: auto; max-height: 40%; }
    TrendsScreen #chart { height: 1fr; min-height: 6; }
    """
    BINDINGS = [
        Binding("left_square_bracket", "span(-1)", "Shorter span"),
        Binding("right_square_bracket", "span(1)", "Longer span"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.span = "1h"
        self.shown: Trends | None = None
        self._plotted: tuple | None = None

    def compose_body(self) -> ComposeResult:
        from textual_plotext import PlotextPlot  # its import (~40 ms) only once shown
        yield DataTable(id=f"{self.VIEW}-table", cursor_type="row")
        yield PlotextPlot(id="chart")
        yield Static("", id="status")

    # ------------------------------------------------------------ refresh

    def loader(self) -> Callable[[Queue], Any]:
        span = self.span
        if not self.console.db.threaded:  # one thread (pictures, tests): read here
            return lambda queue: reads.trends(queue, span)
        return lambda queue: None  # read on the slow thread: see apply

    def apply(self, result: Trends | None, summary: Summary) -> None:
        if result is None:
            span = self.span
            result = self.console.slow_read(f"trends-{span}",
                                            lambda queue: reads.trends(queue, span),
                                            SPAN_MAX_AGE[span])
        if result is None or result.span != self.span:
            show(self.query_one("#status", Static), f"[b]{SPAN_WORDS[self.span]}[/b]  "
                 "[dim]reading…[/dim]")
            return
        self.shown = result
        rows = [{"name": ALL, "trend": result.total}] if result.total else []
        rows += [{"name": t.name, "trend": t} for t in result.queues]
        self.show_rows(rows, trend_cells)
        self.show_status(result)
        self.plot()

    def show_status(self, result: Trends) -> None:
        notes = []
        if result.capped_from is not None:
            notes.append(f"[b #ffaf00]busy span: counts cover runs since "
                         f"{iso(result.capped_from)}[/]")
        if result.durations_capped:
            notes.append(f"[b #ffaf00]durations of the newest {TREND_MAX_ATTEMPTS:,} runs[/]")
        show(self.query_one("#status", Static),
             f"[b]{SPAN_WORDS[result.span]}[/b], per {BUCKET_WORDS[result.span]}"
             + ("  " + " · ".join(notes) if notes else "")
             + "  [dim]\\[ ] span 5m 1h 24h · enter: its jobs[/dim]")

    def plot(self) -> None:
        """Chart the selected row: runs per bucket, done and failed stacked."""
        from textual_plotext import PlotextPlot
        row = self.selected()
        if self.shown is None or row is None:
            return
        t: QueueTrend = row["trend"]
        key = (self.shown.span, self.shown.start, t.name, tuple(t.completed), tuple(t.failed))
        if key == self._plotted:
            return
        self._plotted = key
        chart = self.query_one("#chart", PlotextPlot)
        plt = chart.plt
        plt.clear_figure()
        n = len(t.completed)
        xs = list(range(n))
        plt.plot(xs, t.completed, label="done", color="green", marker="braille")
        plt.plot(xs, t.failed, label="failed", color="red", marker="braille")
        plt.xticks(*self._ticks(n))
        top = max(t.completed + t.failed + [1])
        plt.ylim(0, top)
        plt.yticks(_whole_ticks(top))
        plt.title(f"{shown_name(row['name'])}: runs per {BUCKET_WORDS[self.shown.span]}, "
                  f"{SPAN_WORDS[self.shown.span]}")
        chart.refresh()

    def _ticks(self, n: int) -> tuple[list[float], list[str]]:
        """Labels every TICK_S seconds along the span, as time before now, at
        bucket edges (bucket i is drawn at x = i)."""
        assert self.shown is not None
        span_s, every = n * self.shown.bucket_s, TICK_S[self.shown.span]
        places, labels = [], []
        for k in range(int(span_s // every) + 1):
            back = span_s - k * every
            places.append(k * every / self.shown.bucket_s - 0.5)
            labels.append("now" if back == 0 else "-" + _short(back))
        return places, labels

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.plot()

    # ------------------------------------------------------------ keys

    def action_span(self, step: int) -> None:
        at = TREND_SPANS.index(self.span)
        self.span = TREND_SPANS[max(0, min(len(TREND_SPANS) - 1, at + step))]
        self.console.request_refresh(summary=False)

    def action_open_jobs(self) -> None:
        row = self.selected()
        if row is None:
            return
        since = f"since:{self.span}"
        self.console.show_jobs_filtered(since if row["name"] == ALL
                                        else f"queue:{row['name']} {since}")
