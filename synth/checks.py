"""Validation of frozen config fields, written once for every config of codekiln.synth: the
same rule gives the same message (``<section>.<field> must be ...``, :class:`ConfigError`)."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ConfigError

__all__ = ["require_int_at_least", "require_positive_number"]


def require_int_at_least(config: object, section: str, names: Iterable[str], low: int) -> None:
    """Each named field is an integer (not a bool) ``>= low``."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{section}.{name} must be an integer >= {low}, got {value!r}")


def require_positive_number(config: object, section: str, names: Iterable[str]) -> None:
    """Each named field is a number (int or float, not a bool) ``> 0``."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{section}.{name} must be a number > 0, got {value!r}")
