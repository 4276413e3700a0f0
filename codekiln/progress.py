"""Progress of a long phase (over about two seconds) on a terminal: rate, count and ETA.

One helper for every component's CLI: :func:`track` wraps an iterable and draws a rich
progress bar on stderr when stderr is a terminal (as rich decides it, so ``FORCE_COLOR``
and ``TTY_COMPATIBLE`` still count) and rich is installed; otherwise it yields the items
untouched and draws nothing, so a pipe or a log file gets no control characters.
``codekiln.sandbox`` does not use it (it deploys alone).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sized
from typing import Any, TypeVar

__all__ = ["terminal_console", "track"]

T = TypeVar("T")


def terminal_console() -> Any:
    """A rich Console on stderr when stderr is a terminal and rich is installed, else None."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        tty = False
    if not tty and "FORCE_COLOR" not in os.environ and "TTY_COMPATIBLE" not in os.environ:
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    console = Console(stderr=True)
    return console if console.is_terminal else None


def track(
    items: Iterable[T],
    *,
    description: str,
    total: int | None = None,
    unit: str = "items",
    console: Any = None,
) -> Iterator[T]:
    """Yield ``items``, drawing count, rate and ETA on ``console`` (default: stderr if a tty)."""
    console = console if console is not None else terminal_console()
    if console is None:
        yield from items
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if total is None and isinstance(items, Sized):
        total = len(items)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total, rate="")
        for item in items:
            yield item
            progress.advance(task)
            speed = progress.tasks[task].speed
            if speed:
                progress.update(task, rate=f"{speed:,.1f} {unit}/s")
