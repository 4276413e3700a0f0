# Type stub of the C extension built from _native.c (absent when it was not built).
from collections.abc import Sequence
from typing import Any

import numpy.typing as npt
from typing_extensions import Buffer

# numpy arrays export the buffer protocol, which numpy's stubs declare only on Python 3.12+.
_Bytes = Buffer | npt.NDArray[Any]

def ascii_words(data: _Bytes, /) -> tuple[bytes, bytes]: ...
def ascii_profile(data: _Bytes, /) -> tuple[int, int, int, int]: ...
def ngram_signals(
    ids: _Bytes, lengths: _Bytes, /
) -> tuple[float, float, float, float, float, float, float, float, float]: ...
def minhash_words(texts: Sequence[bytes], /) -> tuple[bytes, bytes]: ...
