"""Time budgets for signals: a slow signal is stopped and counted, the others still run.

Preemption uses ``SIGALRM`` (a repeating ``setitimer`` tick while a batch runs), which Python
can only arm from the main thread of a process. The runtime's process-pool workers run stage
batches in their main thread, so there every signal is stopped within its budget plus one tick
(a quarter of the budget, at most 0.25 s). Called from another thread (an executor thread), no
alarm can be armed: the signal runs to completion, its elapsed time is compared with the budget
afterwards, and an overrun is counted as ``slow`` (the value is still used). Code that holds
the GIL inside C (a single regular-expression match, ``ast.parse``) cannot be interrupted by
the alarm until it returns; every regular expression here is written to run in linear time and
the parsers run on size-capped input, so those calls are bounded by input size. The JavaScript
parser (tree-sitter, in C) reads the deadline cell itself from its progress callback and stops
at the deadline (see :mod:`.signals.javascript`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class SignalTimeout(Exception):
    """A signal ran past its time budget and was stopped."""


# The deadline of the signal running now (perf_counter seconds; 0: none). A repeating timer
# ticks while a batch runs; the handler raises only when a signal is running past its deadline.
# This costs a clock read per signal instead of two ``setitimer`` system calls. The filter
# stage's loop writes the cell directly before each signal and clears it after (no call per
# signal).
_deadline = [0.0]
DEADLINE = _deadline


def _on_alarm(signum: int, frame: Any) -> None:
    if _deadline[0] and time.perf_counter() > _deadline[0]:
        raise SignalTimeout


def can_preempt() -> bool:
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")


def tick_for(budget_s: float) -> float:
    """The timer period for a budget: a signal is stopped within budget + one tick."""
    return max(0.01, min(0.25, budget_s / 4))


@contextmanager
def alarm_handler(tick_s: float = 0.25) -> Iterator[bool]:
    """Install the SIGALRM handler and a repeating timer for the duration of a batch; yields
    whether preemption is active (only in a process's main thread)."""
    if not can_preempt():
        yield False
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    _deadline[0] = 0.0
    signal.setitimer(signal.ITIMER_REAL, tick_s, tick_s)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _deadline[0] = 0.0
        signal.signal(signal.SIGALRM, previous)
