"""The rich progress display of a CLI run: one line per step, refreshed from the counters."""

from __future__ import annotations

import asyncio
import time

from codekiln.stream.metrics import RunMetrics
from rich.console import Console
from rich.live import Live
from rich.table import Table


def metrics_table(metrics: RunMetrics, elapsed_s: float | None = None) -> Table:
    title = "codekiln stream" + (f"  {elapsed_s:.0f}s" if elapsed_s is not None else "")
    table = Table(title=title, title_justify="left")
    for col in ("step", "in", "rec/s", "out", "dropped", "queue", "busy s"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for m in metrics:
        # A stream has no known end (inputs are read as they come): the rate, not an ETA.
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
