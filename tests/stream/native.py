"""Run a check with and without codekiln's C extension (``codekiln.stream._native``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from codekiln.stream.dedup import minhash
from codekiln.stream.filters import document

#: The modules that pick the C loops when the extension is built.
_USERS = (document, minhash)
BUILT = document._native is not None


@contextlib.contextmanager
def numpy_only() -> Iterator[None]:
    """The numpy implementations, as on an install without a C compiler."""
    saved = [module._native for module in _USERS]
    for module in _USERS:
        module._native = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for module, native in zip(_USERS, saved, strict=True):
            module._native = native  # type: ignore[assignment]


def implementations() -> Iterator[str]:
    """Yield "native" (when built) then "numpy", each with that implementation in use."""
    if BUILT:
        yield "native"
    with numpy_only():
        yield "numpy"
