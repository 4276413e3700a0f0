"""codekiln's C extension (``codekiln.stream._native``, from ``stream/_native.c``) if it is
built and current, else None: its users then run the numpy / regular-expression paths, which
compute the same values, slower.

A build left over from an older checkout (an editable install not reinstalled after a pull)
may lack a function or compute something else: its ``VERSION`` tells, and such a build is set
aside with a warning in the log instead of being used.
"""

from __future__ import annotations

import logging

#: The VERSION of _native.c this Python code was written against.
EXPECTED_VERSION = 5

try:
    from codekiln.stream import _native as _loaded
except ImportError:  # installed without a C compiler
    _loaded = None  # type: ignore[assignment]

if _loaded is not None and getattr(_loaded, "VERSION", None) != EXPECTED_VERSION:
    logging.getLogger(__name__).warning(
        "codekiln's C extension %s is version %s, this code needs %s: not used (slower numpy "
        "paths); rebuild it with `pip install -e .` (or `make venv`)",
        _loaded.__file__,
        getattr(_loaded, "VERSION", "unknown"),
        EXPECTED_VERSION,
    )
    _loaded = None  # type: ignore[assignment]

native = _loaded
