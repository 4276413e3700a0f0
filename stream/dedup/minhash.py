"""MinHash signatures and LSH band keys, as plain functions over batches of texts.

Everything the fuzzy dedup stage computes per document lives here, without stage state, so
that another executor (the Ray dedup) reuses exactly the same shingles, signatures and band
keys, and therefore makes exactly the same decisions.

Shingles are **word 5-grams**: a word is a maximal run of ASCII letters, digits and ``_``, or of
non-ASCII characters (so identifiers are words and punctuation separates them, as in BigCode's
near-dedup); five consecutive words, in order, form one shingle. A document with 1 to 4 words
has one shingle (all its words); a document with no word has none and is never a near-duplicate.

The path is vectorised end to end: one C loop (codekiln's extension; numpy without it)
tokenises and hashes the words of a whole batch (UTF-8 bytes, a position-weighted sum per word,
a 64-bit mix), 5-grams are combined as a
polynomial over consecutive word hashes, and rensa's compiled R-MinHash (Rust, SIMD) computes the
2048-slot signatures of the whole batch in one call. Band keys are a 64-bit hash of each band's
rows, so an LSH bucket is one integer.

Effective threshold: with ``b`` bands of ``r`` rows, a pair of Jaccard similarity ``s`` becomes a
candidate with probability ``1 - (1 - s**r)**b``; the S-curve's midpoint is about
``(1/b)**(1/r)``: 16 x 128 gives 0.979 (near-exact only), 128 x 16 gives 0.738.
"""

from __future__ import annotations

import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from codekiln.stream.native_loader import native as _native

from codekiln.checks import bound, check_bounds

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SHINGLE_MUL = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True, slots=True)
class MinHashParams:
    """Signature and banding parameters. ``bands * rows`` must not exceed ``num_perm``."""

    num_perm: int = bound(2048, ">= 1")
    bands: int = bound(16, ">= 1")
    rows: int = bound(128, ">= 1")
    ngram: int = bound(5, ">= 1")
    seed: int = bound(1, f"[0, {2**63})")

    def __post_init__(self) -> None:
        check_bounds(self, "minhash", ValueError)
        if self.bands * self.rows > self.num_perm:
            raise ValueError(
                f"minhash: bands x rows = {self.bands} x {self.rows} = {self.bands * self.rows} "
                f"exceeds num_perm = {self.num_perm}"
            )

    @property
    def threshold(self) -> float:
        return threshold(self.bands, self.rows)

    def fingerprint(self) -> str:
        """Identifies the parameters and the signature algorithm's version: band keys are
        comparable only under equal fingerprints (a checkpoint, another worker)."""
        import rensa

        algo = getattr(rensa.RMinHash, "ALGORITHM_VERSION", "?")
        return f"w{self.ngram}:p{self.num_perm}:b{self.bands}x{self.rows}:s{self.seed}:r{algo}:v1"


#: Named parameter sets. ``opencoder`` is the paper's "band 16, row 128" read literally;
#: ``opencoder-128x16`` the other reading; ``t0.7`` .. ``t0.85`` the (bands, rows) that
#: datasketch's own optimiser picks for that threshold at 2048 permutations (equal FP/FN weight).
PRESETS: dict[str, MinHashParams] = {
    "opencoder": MinHashParams(2048, 16, 128),
    "opencoder-128x16": MinHashParams(2048, 128, 16),
    "t0.7": MinHashParams(2048, 136, 15),
    "t0.75": MinHashParams(2048, 113, 18),
    "t0.8": MinHashParams(2048, 89, 23),
    "t0.85": MinHashParams(2048, 68, 30),
}


def threshold(bands: int, rows: int) -> float:
    """The usual approximation of the S-curve's midpoint, ``(1/b)**(1/r)``."""
    return float((1.0 / bands) ** (1.0 / rows))


def detection_probability(
    s: float | npt.NDArray[np.float64], bands: int, rows: int
) -> npt.NDArray[np.float64]:
    """Probability that a pair of Jaccard similarity ``s`` shares at least one band."""
    s_arr = np.asarray(s, dtype=np.float64)
    return np.asarray(1.0 - (1.0 - s_arr**rows) ** bands)


def _mix64(x: U64) -> U64:
    """splitmix64's finaliser, in place on a uint64 array."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


_WORD_BYTE = np.zeros(256, dtype=bool)
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
    _WORD_BYTE[_c] = True
_WORD_BYTE[0x80:] = True  # every byte of a multi-byte UTF-8 character

# Word hash: a polynomial over the word's bytes, sum((byte + 1) * R**k), computed for all words
# at once from one prefix sum over the batch: the word at [a, b) is (P[b] - P[a]) * R**-a
# (R is odd, hence invertible modulo 2**64). The power tables are cached and grown on demand.
_R = 0xD6E8FEB86659FD93
_R_INV = pow(_R, -1, 2**64)
_POWERS: list[U64] = [np.ones(1, np.uint64), np.ones(1, np.uint64)]


def _power_tables(n: int) -> tuple[U64, U64]:
    if _POWERS[0].size < n:
        size = max(n, 2 * _POWERS[0].size, 1 << 16)
        for i, base in enumerate((_R, _R_INV)):
            table = np.full(size, base, dtype=np.uint64)
            table[0] = 1
            np.cumprod(table, out=table)
            _POWERS[i] = table
    return _POWERS[0], _POWERS[1]


def word_hashes(texts: Sequence[str]) -> tuple[U64, npt.NDArray[np.int64]]:
    """64-bit hashes of the words of each text: (flat hashes, per-text word counts)."""
    bufs = [t.encode("utf-8", "surrogatepass") for t in texts]
    if _native is not None:  # the same hashes from one C loop
        hashes, counts = _native.minhash_words(bufs)
        return np.frombuffer(hashes, dtype=np.uint64), np.frombuffer(counts, dtype=np.int64)
    return word_hashes_numpy(bufs)


def word_hashes_numpy(bufs: Sequence[bytes]) -> tuple[U64, npt.NDArray[np.int64]]:
    """:func:`word_hashes` of UTF-8 texts in numpy (without the C extension)."""
    joined = b"\n".join(bufs)  # "\n" is not a word byte: no word spans two texts
    n = len(bufs)
    if not joined:
        return np.zeros(0, np.uint64), np.zeros(n, np.int64)
    data = np.frombuffer(joined, dtype=np.uint8)
    is_word = _WORD_BYTE[data]
    edges = np.diff(is_word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    if starts.size == 0:
        return np.zeros(0, np.uint64), np.zeros(n, np.int64)
    ends = np.flatnonzero(edges == -1)
    powers, inverse = _power_tables(data.size + 1)
    prefix = np.empty(data.size + 1, dtype=np.uint64)
    prefix[0] = 0
    np.multiply(data, powers[: data.size], out=prefix[1:], dtype=np.uint64)
    prefix[1:] += powers[: data.size]  # (byte + 1): a zero byte still counts
    np.cumsum(prefix, out=prefix)
    hashes = (prefix[ends] - prefix[starts]) * inverse[starts]
    hashes ^= (ends - starts).astype(np.uint64) * _SHINGLE_MUL
    _mix64(hashes)
    doc_starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        lens = np.fromiter((len(b) + 1 for b in bufs[:-1]), np.int64, n - 1)
        np.cumsum(lens, out=doc_starts[1:])
    doc_of_word = np.searchsorted(doc_starts, starts, side="right") - 1
    counts = np.bincount(doc_of_word, minlength=n).astype(np.int64)
    return hashes, counts


def shingle_hashes(
    words: U64, counts: npt.NDArray[np.int64], ngram: int
) -> tuple[U64, npt.NDArray[np.uint64]]:
    """Hashes of each text's word n-grams: (flat hashes, row offsets of length n + 1)."""
    n = counts.size
    word_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=word_offsets[1:])
    per_doc = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    offsets = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(per_doc, out=offsets[1:])
    total = int(offsets[-1])
    out = np.empty(total, dtype=np.uint64)
    if words.size >= ngram:
        m = words.size - ngram + 1
        acc = words[:m].copy()
        for j in range(1, ngram):
            acc *= _SHINGLE_MUL
            acc += words[j : j + m]
        _mix64(acc)
        # Keep the n-grams that start and end inside one text.
        long_docs = np.flatnonzero(counts >= ngram)
        if long_docs.size:
            starts = word_offsets[long_docs]
            lens = counts[long_docs] - ngram + 1
            idx = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
            idx += np.arange(int(lens.sum()), dtype=np.int64)
            dest = np.repeat(offsets[long_docs].astype(np.int64), lens)
            dest += np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(
                np.concatenate(([0], np.cumsum(lens)[:-1])), lens
            )
            out[dest] = acc[idx]
    for d in np.flatnonzero((counts > 0) & (counts < ngram)):
        acc1 = 0
        for w in words[word_offsets[d] : word_offsets[d + 1]].tolist():
            acc1 = (acc1 * int(_SHINGLE_MUL) + w) & 0xFFFFFFFFFFFFFFFF
        out[int(offsets[d])] = _mix64(np.array([acc1], dtype=np.uint64))[0]
    return out, offsets


def shingle_sets(texts: Sequence[str], ngram: int = 5) -> list[set[int]]:
    """The shingle hash set of each text (for exact Jaccard in tests and evaluation)."""
    words, counts = word_hashes(texts)
    flat, offsets = shingle_hashes(words, counts, ngram)
    return [set(flat[int(offsets[i]) : int(offsets[i + 1])].tolist()) for i in range(len(texts))]


#: The array module's type code of 32-bit unsigned integers ("I" on every common platform).
_U32_CODE = next(code for code in "IL" if array.array(code).itemsize == 4)

#: Texts are shingled in chunks of about this many characters: the numpy temporaries (8 bytes
#: per input byte) then stay small and are reused instead of being page-faulted in afresh.
CHUNK_CHARS = 1 << 19


def signatures(texts: Sequence[str], params: MinHashParams) -> tuple[U32, npt.NDArray[np.bool_]]:
    """MinHash signatures ``(n, num_perm)`` uint32 and a mask of texts that have shingles."""
    import rensa

    sig = np.empty((len(texts), params.num_perm), dtype=np.uint32)
    has = np.zeros(len(texts), dtype=bool)
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (end == start or size + len(texts[end]) <= CHUNK_CHARS):
            size += len(texts[end])
            end += 1
        words, counts = word_hashes(texts[start:end])
        flat, offsets = shingle_hashes(words, counts, params.ngram)
        has[start:end] = offsets[1:] > offsets[:-1]
        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
            flat, offsets, params.num_perm, params.seed
        )
        # Each row through array.array: numpy then copies buffers instead of converting
        # 2048 Python ints per row one by one (about half the conversion time).
        rows = [array.array(_U32_CODE, row) for row in matrix.to_rows()]
        sig[start:end] = np.array(rows, dtype=np.uint32).reshape(end - start, -1)
        start = end
    return sig, has


_BAND_COEF: U64 = np.random.default_rng(0xBA4D).integers(
    1, 2**63, size=4096, dtype=np.uint64
) | np.uint64(1)


def band_keys(sig: U32, params: MinHashParams) -> U64:
    """One 64-bit key per band: ``(n, bands)``. Equal bands give equal keys; unequal bands
    collide with probability about 2**-64."""
    n = sig.shape[0]
    keys = np.empty((n, params.bands), dtype=np.uint64)
    coef = _BAND_COEF[: params.rows]
    for band in range(params.bands):  # one band at a time: temporaries of n x rows only
        rows = sig[:, band * params.rows : (band + 1) * params.rows].astype(np.uint64)
        rows *= coef
        rows.sum(axis=1, dtype=np.uint64, out=keys[:, band])
    return _mix64(keys)


def repository_signature(sigs: U32) -> U32:
    """The signature of a union of shingle sets is the element-wise minimum of signatures."""
    return np.asarray(sigs.min(axis=0), dtype=np.uint32)
