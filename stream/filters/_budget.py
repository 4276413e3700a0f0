"""Time budgets for signals: a slow signal is stopped and counted, the others still run.

Preemption uses ``SIGALRM`` (``setitimer``), which Python can only arm from the main thread of
a process. The runtime's process-pool workers run stage batches in their main thread, so there
every signal is preempted at its budget. Called from another thread (an executor thread), no
alarm can be armed: the signal runs to completion, its elapsed time is compared with the budget
afterwards, and an overrun is counted as ``slow`` (the value is still used). Code that holds
the GIL inside C (a single regular-expression match, ``ast.parse``) cannot be interrupted by
the alarm until it returns; every regular expression here is written to run in linear time and
the parsers run on size-capped input, so those calls are bounded by input size.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
A = TypeVar("A")


class SignalTimeout(Exception):
    """A signal ran past its time budget and was stopped."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise SignalTimeout


def can_preempt() -> bool:
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")


@contextmanager
def alarm_handler() -> Iterator[bool]:
    """Install the SIGALRM handler for the duration of a batch; yields whether it is active."""
    if not can_preempt():
        yield False
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_with_budget(fn: Callable[[A], T], arg: A, budget_s: float, armed: bool) -> tuple[T, float]:
    """``fn(arg)`` under ``budget_s``; returns (value, elapsed seconds). Raises SignalTimeout."""
    start = time.perf_counter()
    if armed:
        signal.setitimer(signal.ITIMER_REAL, budget_s)
        try:
            value = fn(arg)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    else:
        value = fn(arg)
    return value, time.perf_counter() - start
