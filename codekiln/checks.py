"""Bounds of frozen config fields, declared on the field and checked in one place.

A config field states its bound where it is defined::

    @dataclass(frozen=True, slots=True)
    class MinHashParams:
        num_perm: int = bound(2048, ">= 1")
        top_p: float = bound(1.0, "(0, 1]")

        def __post_init__(self) -> None:
            check_bounds(self, "minhash", ValueError)

and :func:`check_bounds` raises the component's own error class with one message shape for
every config of codekiln: ``<section>.<field> must be <kind> <bound>, got <value>``, e.g.
``synth.max_seeds must be an integer >= 0, got -1`` or ``top_p must be a number in (0, 1],
got 2`` (no section: the bare field name). An ``int`` default makes the field an integer (a
float or a bool is refused); otherwise it is a number (int or float, never a bool). A field
whose default is ``None`` also accepts ``None``. NaN fails every bound. :func:`check_value`
is the same check for an option that is no dataclass field (a stage's keyword argument).
:func:`one_of` declares a field that takes one of a few names (``mode: str = one_of("base",
MODES)``), checked by the same call. :func:`check_types` checks that each field declared
``str``, ``int``, ``float`` or ``bool`` (or one of them or ``None``) holds one, for a config
built straight from YAML (``<section>.<field> must be a string, got 5``); :func:`yaml_numbers`
first turns what YAML 1.1 reads as text but is a number (``lr: 3e-4``, no dot) into a float for
the fields declared ``float``.

``codekiln.sandbox`` never imports this module (it deploys alone).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "Bound",
    "Choice",
    "bound",
    "check_bounds",
    "check_types",
    "check_value",
    "one_of",
    "yaml_numbers",
]

_T = TypeVar("_T")
_S = TypeVar("_S", bound=str)
_KEY = "codekiln.bound"


@dataclass(frozen=True, slots=True)
class Bound:
    """What values a field takes: an integer or any number, within optional limits."""

    integer: bool
    optional: bool = False
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def admits(self, value: object) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        return (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def describe(self) -> str:
        """``an integer >= 1``, ``a number > 0``, ``a number in (0, 1]`` ..."""
        kind = "an integer" if self.integer else "a number"
        low = f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}"
        high = f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})"
        has_low = self.ge is not None or self.gt is not None
        has_high = self.le is not None or self.lt is not None
        if has_low and has_high:
            text = f"{kind} in {low}, {high}"
        elif has_low:
            text = f"{kind} {'>=' if self.ge is not None else '>'} {low[1:]}"
        elif has_high:
            text = f"{kind} {'<=' if self.le is not None else '<'} {high[:-1]}"
        else:
            text = kind
        return text + (" or null" if self.optional else "")


@dataclass(frozen=True, slots=True)
class Choice:
    """A field that takes one of a few named values (a mode, a backend)."""

    choices: tuple[str, ...]

    def admits(self, value: object) -> bool:
        return isinstance(value, str) and value in self.choices

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)


def _num(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bound(
    default: _T, limits: str = "", *, integer: bool | None = None, optional: bool | None = None
) -> _T:
    """A dataclass field with ``default`` and a :class:`Bound` that :func:`check_bounds` checks.

    ``limits``: ``">= 1"``, ``"> 0"``, ``"<= 20"``, ``"< 1"``, or an interval such as
    ``"(0, 1]"`` or ``"[0, 20]"``; empty: any value of the kind. ``integer``: by default,
    whether ``default`` is an ``int``; ``optional`` (``None`` is accepted): by default, whether
    ``default`` is ``None``. A bad ``limits`` or a default outside them is a ``TypeError`` (at
    import, where the config class is defined).
    """
    if integer is None:
        integer = isinstance(default, int) and not isinstance(default, bool)
    if optional is None:
        optional = default is None
    rule = Bound(integer, optional, *_parse_limits(limits))
    if default is not None and not rule.admits(default):
        raise TypeError(f"bound: the default {default!r} is not {rule.describe()}")
    field: _T = dataclasses.field(default=default, metadata={_KEY: rule})
    return field


def one_of(default: _S, choices: Iterable[str]) -> _S:
    """A dataclass field with ``default`` that :func:`check_bounds` checks is one of ``choices``
    (``<section>.<field> must be one of a, b, got 'c'``)."""
    rule = Choice(tuple(choices))
    if not rule.admits(default):
        raise TypeError(f"one_of: the default {default!r} is not {rule.describe()}")
    field: _S = dataclasses.field(default=default, metadata={_KEY: rule})
    return field


_INTERVAL = re.compile(r"([\[(])\s*([^,\s]+)\s*,\s*([^\])\s]+)\s*([\])])")
_HALF = re.compile(r"(>=|>|<=|<)\s*(\S+)")


def _parse_limits(limits: str) -> tuple[float | None, float | None, float | None, float | None]:
    """``(ge, gt, le, lt)`` of a limits text (see :func:`bound`)."""
    text = limits.strip()
    if not text:
        return None, None, None, None
    if m := _INTERVAL.fullmatch(text):
        opening, low, high, closing = m.groups()
        lo, hi = _number(low, limits), _number(high, limits)
        return (
            lo if opening == "[" else None,
            lo if opening == "(" else None,
            hi if closing == "]" else None,
            hi if closing == ")" else None,
        )
    if m := _HALF.fullmatch(text):
        op, value = m.group(1), _number(m.group(2), limits)
        ge, gt, le, lt = (value if op == o else None for o in (">=", ">", "<=", "<"))
        return ge, gt, le, lt
    raise TypeError(f"bound: limits {limits!r} are not '>= n', '> n', '<= n', '< n' or '(a, b]'")


def _number(text: str, limits: str) -> float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise TypeError(f"bound: {text!r} in limits {limits!r} is not a number") from None


def check_bounds(config: Any, section: str, error: type[Exception]) -> None:
    """Raise ``error`` on the first field of the dataclass ``config`` outside its bound."""
    for f in dataclasses.fields(config):
        rule = f.metadata.get(_KEY)
        if rule is not None:
            _check(
                rule, f"{section}.{f.name}" if section else f.name, getattr(config, f.name), error
            )


def check_value(
    name: str, value: object, limits: str, error: type[Exception], *, integer: bool = False
) -> None:
    """The same check for a value that is no dataclass field (a stage's keyword option):
    ``value`` is a number (``integer``: an integer) within ``limits`` (see :func:`bound`)."""
    _check(Bound(integer, False, *_parse_limits(limits)), name, value, error)


def _check(rule: Bound | Choice, name: str, value: object, error: type[Exception]) -> None:
    if not rule.admits(value):
        raise error(f"{name} must be {rule.describe()}, got {value!r}")


#: The simple field types check_types knows, with how a message names each.
_SIMPLE: dict[type, str] = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
}


def check_types(config: Any, section: str, error: type[Exception]) -> None:
    """Raise ``error`` on the first field of the dataclass ``config`` whose value is not of its
    declared simple type: ``str``, ``int`` (not a bool), ``float`` (an int too, not a bool),
    ``bool``, or a union of them with ``None``. Fields of other types are left to their checks."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        kinds = _simple_kinds(hints.get(f.name))
        if kinds is None:
            continue
        value = getattr(config, f.name)
        if value is None and type(None) in kinds:
            continue
        if not any(_is_kind(value, kind) for kind in kinds if kind is not type(None)):
            want = " or ".join(_SIMPLE[k] for k in kinds if k is not type(None))
            name = f"{section}.{f.name}" if section else f.name
            raise error(f"{name} must be {want}, got {value!r}")


def _simple_kinds(hint: Any) -> tuple[type, ...] | None:
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if args and all(a in _SIMPLE or a is type(None) for a in args):
        return tuple(args)
    return None


def _is_kind(value: object, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def yaml_numbers(klass: type, raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (keyword arguments for the dataclass ``klass``) with each text that is a finite
    number made a float, for the fields declared ``float`` (or ``float | None``): YAML 1.1 reads
    ``3e-4`` (no dot) as a string. Anything else is left for :func:`check_types` to refuse."""
    hints = typing.get_type_hints(klass)
    out = dict(raw)
    for name, value in raw.items():
        kinds = _simple_kinds(hints.get(name))
        if kinds is None or float not in kinds or str in kinds or not isinstance(value, str):
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number):
            out[name] = number
    return out
