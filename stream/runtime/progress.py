"""The rich progress display of a CLI run: one line per step, refreshed from the counters.

The title holds the elapsed time and, when the input's size is known (files and folders; not
a stream or a worker's queue), how much of the input is read and an ETA for the rest, at the
rate this process has read so far (see :class:`~codekiln.stream.metrics.InputProgress`).
"""

from __future__ import annotations

import asyncio
import math
import time

from codekiln.stream.metrics import RunMetrics
from rich.console import Console
from rich.live import Live
from rich.table import Table


def duration(seconds: float) -> str:
    """``42s``, ``1m05s``, ``2h03m``: rounded to the second, or to the minute past an hour."""
    s = round(max(seconds, 0.0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    m = round(s / 60)
    return f"{m // 60}h{m % 60:02d}m"


def input_status(metrics: RunMetrics, now: float | None = None) -> str:
    """``input 42.5%  ETA 1m05s``; ``-`` for what is not known."""
    progress = metrics.input
    if progress.fraction is None:
        return "input -  ETA -"
    # Floored: 99.96% read is not 100.0%.
    percent = math.floor(progress.fraction * 1000) / 10
    eta = progress.eta_s(time.monotonic() if now is None else now)
    return f"input {percent:.1f}%  ETA {duration(eta) if eta is not None else '-'}"


def metrics_table(
    metrics: RunMetrics, elapsed_s: float | None = None, now: float | None = None
) -> Table:
    """The table of every step; ``now`` (``time.monotonic()``) for the ETA, default the
    present."""
    title = "codekiln stream"
    if elapsed_s is not None:
        title += f"  {elapsed_s:.0f}s  {input_status(metrics, now)}"
    table = Table(title=title, title_justify="left")
    for col in ("step", "in", "rec/s", "out", "dropped", "queue", "busy s"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for m in metrics:
        rate = f"{m.records_in / elapsed_s:,.0f}" if elapsed_s else "-"
        table.add_row(
            m.key,
            f"{m.records_in:,}",
            rate,
            f"{m.records_out:,}",
            f"{m.dropped_total:,}",
            str(m.depth()),
            f"{m.busy_s:.1f}",
        )
    return table


async def show_progress(metrics: RunMetrics, console: Console, period_s: float = 0.5) -> None:
    """Redraw until cancelled (the caller cancels it when the pipeline ends)."""
    start = time.monotonic()
    with Live(
        metrics_table(metrics, 0), console=console, auto_refresh=False, transient=True
    ) as live:
        while True:
            await asyncio.sleep(period_s)
            table = metrics_table(metrics, time.monotonic() - start)
            # Writing to the terminal can block (a paused or slow tty): not in the event loop.
            await asyncio.to_thread(live.update, table, refresh=True)
