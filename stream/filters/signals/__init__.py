"""Every signal the rule tables can name; importing this package registers them all."""

from codekiln.stream.filters.signals import code, python, text  # noqa: F401 - registration
from codekiln.stream.filters.signals._registry import SIGNALS, Signal, Unparseable, signal

__all__ = ["SIGNALS", "Signal", "Unparseable", "signal"]
