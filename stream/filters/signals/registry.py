"""The signal registry: a signal is a named, documented function ``Document -> float``.

Booleans are returned as 0.0 / 1.0 so that every rule is "value compared with a threshold".
A signal raises :class:`Unparseable` when its parser rejects the document; any other exception
is a failure of the signal (counted, the rule is skipped, the other rules still run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from codekiln.stream.filters.document import Document

SignalFn = Callable[[Document], float]


class Unparseable(Exception):
    """The language parser rejected the document (syntax error, too deep, too large)."""

    def __init__(self, parser: str, detail: str) -> None:
        super().__init__(f"{parser}: {detail}")
        self.parser = parser
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    fn: SignalFn
    doc: str


SIGNALS: dict[str, Signal] = {}


def signal(name: str) -> Callable[[SignalFn], SignalFn]:
    """Register ``fn`` as the signal ``name``; its docstring is the signal's documentation."""

    def register(fn: SignalFn) -> SignalFn:
        if name in SIGNALS:
            raise ValueError(f"signal {name!r} registered twice")
        SIGNALS[name] = Signal(name, fn, (fn.__doc__ or "").strip())
        return fn

    return register


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def code_lines_containing(doc: Document, word: str, *, fold: bool) -> int:
    """Code lines holding ``word`` anywhere (lower-cased first when ``fold``), as upstream counts
    its substring line kinds (the ``reproduce`` signals)."""
    code = doc.code_text
    if word not in (code.lower() if fold else code):
        return 0
    if fold:
        return sum(1 for line in doc.code_lines if word in line.lower())
    return sum(1 for line in doc.code_lines if word in line)


def parse_signal(name: str, parse: Callable[[Document], object], doc: str) -> SignalFn:
    """Register the signal ``name``: 0.0 when ``parse`` accepts the document (it raises
    :class:`Unparseable` when its parser does not); ``doc`` is its documentation."""

    def parsed(document: Document) -> float:
        parse(document)
        return 0.0

    parsed.__name__ = parsed.__qualname__ = name
    parsed.__doc__ = doc
    return signal(name)(parsed)
