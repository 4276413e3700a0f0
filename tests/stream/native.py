"""Run a check with and without codekiln's C extension (``codekiln.stream._native``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from codekiln.stream.dedup import minhash
from codekiln.stream.filters import document

#: The modules that pick the C loops when the extension is built, with the name they keep it by.
_USERS = ((document, "native"), (minhash, "_native"))
BUILT = document.native is not None


@contextlib.contextmanager
def numpy_only() -> Iterator[None]:
    """The numpy implementations, as on an install without a C compiler."""
    saved = [getattr(module, name) for module, name in _USERS]
    for module, name in _USERS:
        setattr(module, name, None)
    try:
        yield
    finally:
        for (module, name), native in zip(_USERS, saved, strict=True):
            setattr(module, name, native)


def implementations() -> Iterator[str]:
    """Yield "native" (when built) then "numpy", each with that implementation in use."""
    if BUILT:
        yield "native"
    with numpy_only():
        yield "numpy"
