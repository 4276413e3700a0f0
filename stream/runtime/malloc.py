"""Keep glibc's allocator from growing RSS with input size.

glibc gives each thread its own malloc arena (up to 8 per core). The runtime allocates records
in the reader thread and frees them in the sink thread, so every arena keeps fragments of freed
records and peak RSS creeps up with the amount of input streamed, even though the bounded
channels cap the records alive at once. Two arenas keep RSS flat (bench/bench_runtime.py shows
the difference). Called once at the entry points, before any thread starts.
"""

from __future__ import annotations

import ctypes
import os

_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc malloc arenas unless MALLOC_ARENA_MAX is set; False where not glibc."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    # The process's own symbols (dlopen(NULL)) hold libc's: no ctypes.util.find_library("c"),
    # which runs `ldconfig -p` in a subprocess (about 10 ms a run).
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # TypeError: Windows has no dlopen(NULL)
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
