"""Survivor priority: which member of a duplicate cluster is kept.

A priority is a sequence of ``"field:asc"`` / ``"field:desc"`` terms (bare ``"field"`` means
ascending). A field is a record attribute (``id``, ``path``, ``repo``, ``source``, ``lang``) or a
key of ``record.meta`` (``stars``, ``updated_at``, ...). The record with the smallest
:func:`sort_key` survives. A missing value (or NaN) sorts after every present one whatever the
direction, numbers sort before strings, and ``id`` is always appended as the last term, so the
order is total: the survivor never depends on arrival order, batch boundaries, or worker count.

These are plain functions (no stage state) so that other executors (the Ray dedup) share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from math import isnan
from typing import Any

from codekiln.stream.record import Record

#: Most-starred repository first, then the most recently updated, then path order.
DEFAULT_PRIORITY: tuple[str, ...] = ("stars:desc", "updated_at:desc", "repo:asc", "path:asc")

RECORD_FIELDS = frozenset({"id", "path", "repo", "source", "lang"})

Term = tuple[str, bool]  # (field, descending)


def parse_priority(spec: Iterable[str]) -> tuple[Term, ...]:
    """Parse ``["stars:desc", "path"]``; raises ValueError with the offending term."""
    terms: list[Term] = []
    for raw in spec:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(f"priority: each term must be a non-empty string, got {raw!r}")
        field, _, direction = raw.strip().partition(":")
        direction = direction or "asc"
        if direction not in ("asc", "desc"):
            raise ValueError(f"priority: term {raw!r}: direction must be 'asc' or 'desc'")
        terms.append((field, direction == "desc"))
    if not any(f == "id" for f, _ in terms):
        terms.append(("id", False))
    return tuple(terms)


def field_value(record: Record, field: str) -> Any:
    if field in RECORD_FIELDS:
        value = getattr(record, field)
        return value if value != "" else None
    return record.meta.get(field)


def _component(value: Any, descending: bool) -> tuple[Any, ...]:
    # NaN (JSON input may carry one) is missing: compared as a number it is neither smaller
    # nor greater than any, the order would not be total and the survivor would depend on
    # arrival order and grouping (sharded executors).
    if (
        value is None
        or isinstance(value, (list, dict))
        or (isinstance(value, float) and isnan(value))
    ):
        return (2,)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, (int, float)):
        return (0, -value if descending else value)
    text = str(value)
    if not descending:
        return (1, text)
    # Descending strings: negated code points, with a sentinel that makes a longer string with
    # the same prefix sort first ("ab" before "a", as reversed string order requires).
    return (1, (*(-ord(c) for c in text), 1))


def sort_key(record: Record, terms: Sequence[Term]) -> tuple[tuple[Any, ...], ...]:
    """The survivor sort key of ``record``: the smallest key in a cluster is kept."""
    return tuple(_component(field_value(record, f), d) for f, d in terms)


def values_key(values: Mapping[str, Any], terms: Sequence[Term]) -> tuple[tuple[Any, ...], ...]:
    """Like :func:`sort_key`, from a mapping of field values (e.g. a repository's aggregate)."""
    return tuple(_component(values.get(f), d) for f, d in terms)


def best(records: Iterable[Record], terms: Sequence[Term]) -> Record:
    """The survivor among ``records`` (non-empty)."""
    return min(records, key=lambda r: sort_key(r, terms))
