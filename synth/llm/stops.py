"""Stop strings the server was not sent (vLLM takes at most ``LLMConfig.max_stop_strings``):
applied here, as evalplus does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .replies import Completion

__all__ = ["apply_local_stops", "cut_at_stops"]


def cut_at_stops(text: str, stops: Sequence[str]) -> str | None:
    """``text`` up to the earliest stop string, or ``None`` when none occurs."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return None if cut < 0 else text[:cut]


def apply_local_stops(out: Completion, stop: Sequence[str], sent: int) -> Completion:
    """Apply the stop strings the server was not sent (see the module docstring)."""
    if len(stop) <= sent:
        return out
    choices = []
    for c in out.choices:
        cut = cut_at_stops(c.text, stop)
        choices.append(c if cut is None else replace(c, text=cut, finish_reason="stop"))
    return replace(out, choices=tuple(choices))
