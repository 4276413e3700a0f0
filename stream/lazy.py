"""Package attributes that load on first use (PEP 562), for packages whose import must stay light.

``codekiln.stream``, ``codekiln.stream.runtime`` and ``codekiln.stream.ray`` name their heavy
parts in a table (attribute -> module) and set ``__getattr__ = lazy_getattr(__name__, table)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``table[name]`` and returns its ``name``."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
