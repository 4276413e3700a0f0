"""Every signal the rule tables can name; importing this package registers them all."""

from codekiln.stream.filters.signals import (  # noqa: F401 - importing registers them
    clike,
    code,
    html,
    javascript,
    python,
    text,
)
from codekiln.stream.filters.signals.registry import SIGNALS, Signal, Unparseable, signal

__all__ = ["SIGNALS", "Signal", "Unparseable", "signal"]
