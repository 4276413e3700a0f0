"""Sizes as people write them in configs and on command lines: ``500M``, ``2G``, ``409e9``.

:func:`parse_size` is the one parser every component uses for a byte count, so a size that
one CLI flag accepts is accepted in every YAML config too. Suffixes are powers of 1024
(``k``, ``M``, ``G``, ``T``, with an optional ``i`` and ``B``: ``64KiB``, ``2GB``); a plain
number may use an exponent (``409e9``, which YAML 1.1 loads as a string).
"""

from __future__ import annotations

import math
import re

__all__ = ["SizeError", "parse_size"]

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([kmgtKMGT]?)(?:i?[bB])?\s*$")


class SizeError(ValueError):
    """Not a size; the message shows the value and examples of sizes."""


def parse_size(value: object) -> int:
    """Bytes from an int, a float without fraction, or a string such as ``500M`` / ``409e9``."""
    if isinstance(value, bool):
        raise SizeError(f"not a size: {value!r} (e.g. 500M, 2G, 409e9, 1048576)")
    if isinstance(value, int):
        number: float = value
        factor = 1
    elif isinstance(value, float):
        number, factor = value, 1
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        number = float(m.group(1))
        factor = 1024 ** " kmgt".index(m.group(2).lower() or " ")
    else:
        raise SizeError(f"not a size: {value!r} (e.g. 500M, 2G, 409e9, 1048576)")
    if not math.isfinite(number) or number < 0:
        raise SizeError(f"not a size: {value!r} (must be a finite number >= 0)")
    return int(number * factor)
