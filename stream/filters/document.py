"""One document under analysis: the shared intermediate results every signal reads.

Each analysis (lines, normalised words, comment and string spans, word n-gram hashes) is
computed once, on first use, and cached on the :class:`Document`. A signal that needs an
analysis which failed (ran out of time) fails too and is counted; the other signals go on.

Definitions used throughout (see docs/stream-stage2.md):

- *words*: the tokens of the normalised text, as OpenCoder (after RedPajama) defines them:
  control characters removed, full-width punctuation made ASCII, ASCII punctuation (``_``
  included) replaced by a space, lower-cased, NFKC; then runs of word characters and runs of
  other non-space characters (a ``©`` or ``→`` is a word) are the words (:func:`normal_words`);
- *lines*: the text split on ``\\n``;
- *code text*: the text with comments removed (the comment syntax comes from the language's
  family, :data:`~codekiln.stream.filters.scanner.COMMENT_FAMILY`); *code lines*: its
  non-blank lines;
- *string literals*: quoted literals of the family's syntax, found in the same single scan
  that finds comments (so a ``//`` inside a string is not a comment and vice versa).

The comment/string scanner lives in :mod:`.scanner`; this module holds the document, its word
and line statistics and the word n-gram index.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from codekiln.stream import native_loader
from codekiln.stream.filters.scanner import (
    COMMENT_FAMILY,
    comment_chars,
    comment_content,
    family_of,
    scan,
)

__all__ = [
    "COMMENT_FAMILY",  # re-exported: it was defined here before the scanner had its module
    "NGRAM_MAX",
    "TRIVIAL_LINE_KEYS",
    "Document",
    "native",
    "normal_text",
    "normal_words",
]

#: The C extension or None (the signal modules and the tests read it here; a test sets it to
#: None to run the numpy paths).
native = native_loader.native

#: Word tokens of the normalised text (nltk's ``wordpunct_tokenize``).
_WORD = re.compile(r"\w+|[^\w\s]+")
_WORD_BYTES = re.compile(rb"[a-z0-9]+")
#: The normaliser's steps (upstream's ``normalize_text``): control characters removed, full-width
#: and CJK punctuation made ASCII and ASCII punctuation replaced by a space (in one step: both
#: end as a space; thin and zero-width spaces too), the full-width yen sign made a yen sign.
_REMOVED = re.compile("[\x00-\x07\x0e-\x1a\x1c-\x1f\u202c]")
_FULL_PUNCT = "\u3002\u3001\u300a\u300b\u3010\u3011\u300c\u300d\u201c\u201d\u2018\u2019"
_TO_SPACE = re.compile(
    "["
    + re.escape(string.punctuation)
    + re.escape("".join(chr(ord(c) + 0xFEE0) for c in string.punctuation))
    + _FULL_PUNCT
    + "\u2009\u200b]"
)
#: ASCII bytes the fast path cannot handle (removed controls, and the other non-space controls
#: that are tokens of their own).
_ASCII_SPECIAL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def normal_text(text: str) -> str:
    """``text`` as upstream's normaliser leaves it, before it is cut into words."""
    if _REMOVED.search(text):
        text = _REMOVED.sub("", text)
    text = _TO_SPACE.sub(" ", text).replace("\uffe5", "\u00a5").lower()
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text


def normal_words(text: str) -> list[str]:
    """The words of ``text`` as upstream's normaliser and tokenizer find them."""
    return _WORD.findall(normal_text(text))


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_ALPHA_CODES = np.array([*range(65, 91), *range(97, 123)])
_DIGIT_CODES = np.arange(48, 58)
_SPACE_CODES = np.array(list(b" \t\n\r\x0b\x0c"))
#: ASCII byte -> itself lower-cased when it is a word byte (``[A-Za-z0-9]``: ``_`` is
#: punctuation, a separator), else 0.
_ASCII_WORD_MAP = bytes(
    (b | 0x20 if 65 <= b <= 90 else b) if chr(b).isascii() and chr(b).isalnum() else 0
    for b in range(256)
)
#: What ``str.strip`` removes among ASCII characters, the line break aside.
_STRIP_BYTES = bytes(b for b in range(128) if chr(b).isspace() and b != 10)
#: The same but for the information separators U+001C..U+001F.
_INLINE_SPACE_BYTES = b" \t\r\x0b\x0c"
_SEPARATORS = (b"\x1c", b"\x1d", b"\x1e", b"\x1f")
#: Duplicate-line keys that never count as duplicates (upstream's: one character, ``},``).
TRIVIAL_LINE_KEYS = (b"},", "},")
_HASH_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
#: Odd 63-bit constant: word lengths are multiplied by it into the ids of non-ASCII words.
_LENGTH_MIX = 0x5851F42D4C957F2D
#: Word n-grams are compared up to this size (the largest n of any signal).
NGRAM_MAX = 10
#: Powers of the hash base (and of its inverse) are cached up to this length; longer texts
#: compute their own.
_POWERS_CACHED = 1 << 20
#: numpy's stable sort (radix or timsort) beats its quicksort on the short arrays of one
#: document, and makes the order of equal keys deterministic.
_SORT_KIND: Any = "stable"
_powers_cache: list[tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]] = []


def _powers(size: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """(P**k, P**-k) modulo 2**64 for k < size (at least)."""
    if _powers_cache and len(_powers_cache[0][0]) >= size:
        return _powers_cache[0]
    length = max(size, min(_POWERS_CACHED, 1 << max(size - 1, 1).bit_length()))
    out = []
    for base in (_HASH_BASE, pow(_HASH_BASE, -1, 2**64)):
        seq = np.full(length, base, dtype=np.uint64)
        seq[0] = 1
        with np.errstate(over="ignore"):
            out.append(np.cumprod(seq, dtype=np.uint64))
    result = (out[0], out[1])
    if length <= _POWERS_CACHED:
        _powers_cache[:] = [result]
    return result


def _packed_lcp(
    order: npt.NDArray[np.intp],
    key4: npt.NDArray[np.int64],
    padded: npt.NDArray[np.int64],
    bits: int,
) -> npt.NDArray[np.int8]:
    """Leading words (up to 10) shared by neighbours in ``order``, from the packed 4-word keys:
    the first differing word of two keys is where their XOR's highest bit lies. Only the pairs
    equal on 4 words look at the next 4, only those equal on 8 at the last 2."""
    total = len(order)
    keys = np.zeros(total + 4, dtype=np.int64)
    keys[:total] = key4
    limits = (1 << 3 * bits, 1 << 2 * bits, 1 << bits)

    def shared(diff: npt.NDArray[np.int64]) -> npt.NDArray[np.int8]:
        out = (diff < limits[0]).astype(np.int8)
        out += diff < limits[1]
        out += diff < limits[2]
        out += diff == 0
        return out

    first, second = order[:-1], order[1:]
    diff = keys[first] ^ keys[second]
    lcp = shared(diff)
    more = np.flatnonzero(diff == 0)
    if len(more):
        a, b = first[more] + 4, second[more] + 4
        diff = keys[a] ^ keys[b]
        lcp[more] += shared(diff)
        more = more[diff == 0]
        if len(more):
            a, b = first[more] + 8, second[more] + 8
            eighth = padded[a] == padded[b]
            lcp[more] += eighth
            lcp[more] += eighth & (padded[a + 1] == padded[b + 1])
    return lcp


def _dense_ranks(keys: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], int, npt.NDArray[np.intp]]:
    """(rank 1..R of each key, R distinct keys, the sorting order)."""
    order = np.argsort(keys, kind=_SORT_KIND)
    ordered = keys[order]
    new = np.ones(len(keys), dtype=np.int64)
    if len(keys):
        np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    sorted_ranks = np.cumsum(new)
    ranks = np.empty(len(keys), dtype=np.int64)
    ranks[order] = sorted_ranks
    return ranks, int(sorted_ranks[-1]) if len(keys) else 0, order


class Document:
    """The text of one record and lazily computed analyses of it."""

    def __init__(self, text: str, lang: str = "", path: str = "", table: str = "others") -> None:
        self.text = text
        self.lang = lang
        self.path = path
        self.table = table
        self.family = family_of(lang)

    # ---- identity -----------------------------------------------------------------------
    @cached_property
    def digest(self) -> bytes:
        """SHA-256 of the UTF-8 text: the seed of every probabilistic rule."""
        return hashlib.sha256(self.encoded).digest()

    @cached_property
    def encoded(self) -> bytes:
        return self.text.encode("utf-8", "surrogatepass")

    # ---- lines and characters -----------------------------------------------------------
    @cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def line_count(self) -> int:
        """``len(self.lines)``, without splitting."""
        return self.text.count("\n") + 1

    @cached_property
    def max_line_length(self) -> int:
        """Characters of the longest line; ASCII texts measure it on the bytes (numpy)."""
        if "lines" in self.__dict__ or not self.text.isascii():
            return max(map(len, self.lines))
        if native is not None:
            return self._ascii_profile[3]
        breaks = np.flatnonzero(np.frombuffer(self.encoded, dtype=np.uint8) == 10)
        if not len(breaks):
            return len(self.text)
        # Lengths of the lines between breaks (a break itself not counted), the first and last.
        inner = int(np.diff(breaks).max()) - 1 if len(breaks) > 1 else 0
        return max(inner, int(breaks[0]), len(self.text) - int(breaks[-1]) - 1)

    @cached_property
    def char_classes(self) -> tuple[int, int, int]:
        """(letters, digits, whitespace) over the whole text, with a bytes fast path."""
        text = self.text
        if native is not None:
            return self._ascii_profile[:3] if text.isascii() else native.str_classes(text)
        ascii_part = self.encoded if text.isascii() else text.encode("ascii", "ignore")
        # One counting pass over the bytes (numpy), then a sum per class over 128 counters.
        counts = np.bincount(np.frombuffer(ascii_part, dtype=np.uint8), minlength=128)
        alpha = int(counts[_ALPHA_CODES].sum())
        digit = int(counts[_DIGIT_CODES].sum())
        space = int(counts[_SPACE_CODES].sum())
        if not text.isascii():
            for run in _NON_ASCII.findall(text):
                for ch in run:
                    if ch.isalpha():
                        alpha += 1
                    elif ch.isdigit():
                        digit += 1
                    elif ch.isspace():
                        space += 1
        return alpha, digit, space

    @cached_property
    def _ascii_profile(self) -> tuple[int, int, int, int]:
        """ASCII texts with the C extension: (letters, digits, whitespace, longest line)."""
        return native.ascii_profile(self.encoded)

    # ---- words --------------------------------------------------------------------------
    @cached_property
    def words(self) -> list[str] | list[bytes]:
        """Normalised words; ASCII texts are scanned as bytes (same words, 1.4x faster)."""
        if self._plain_ascii:
            return _WORD_BYTES.findall(self.encoded.lower())
        return normal_words(self.text)

    @cached_property
    def _plain_ascii(self) -> bool:
        """ASCII without control characters: the words are the runs of ``[A-Za-z0-9]``."""
        return self.text.isascii() and _ASCII_SPECIAL.search(self.encoded) is None

    @cached_property
    def word_arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(word ids, word lengths) in text order. Equal words have equal ids (and, up to
        64-bit hash collisions, unequal words unequal ids); only equality is ever used.

        ASCII texts never build the word strings: the bytes are mapped to lower-cased word
        bytes or 0 (one ``bytes.translate``), and each word's id is a polynomial hash of its
        bytes taken from one prefix sum over the whole text (numpy, no per-word Python work).
        """
        if not self._plain_ascii:
            if native is not None:  # the same words (tokens of the normalised text), in C
                raw_ids, raw_lengths = native.str_tokens(normal_text(self.text))
                return np.frombuffer(raw_ids, dtype=np.int64), np.frombuffer(raw_lengths, np.int64)
            words = self.words
            ids = np.fromiter(map(hash, words), dtype=np.int64, count=len(words))
            lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
            # CPython hashes a str's internal bytes: "ぺ" (one 2-byte character) and "z0" (two
            # 1-byte ones) share a hash. Equal words have equal lengths, so mixing the length
            # in keeps equal words equal and sets such pairs apart.
            with np.errstate(over="ignore"):
                ids ^= lengths * np.int64(_LENGTH_MIX)
            return ids, lengths
        if native is not None:  # the same words, ids from another 64-bit hash
            raw_ids, raw_lengths = native.ascii_words(self.encoded)
            return np.frombuffer(raw_ids, dtype=np.int64), np.frombuffer(raw_lengths, np.int64)
        raw = np.frombuffer(self.encoded.translate(_ASCII_WORD_MAP), dtype=np.uint8)
        size = len(raw)
        edges = np.zeros(size + 2, dtype=np.int8)
        np.not_equal(raw, 0, out=edges[1:-1].view(np.bool_))
        # Word starts and ends alternate among the non-zero steps: one scan finds both.
        bounds = np.flatnonzero(np.diff(edges))
        starts = bounds[0::2]
        ends = bounds[1::2]
        powers, inverse = _powers(size + 1)
        prefix = np.zeros(size + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            np.cumsum(raw * powers[:size], out=prefix[1:])
            # sum(b_k * P^k, k in word) / P^start: the same for every occurrence of a word.
            hashed = (prefix[ends] - prefix[starts]) * inverse[starts]
        return hashed.view(np.int64), ends - starts

    @cached_property
    def word_lengths(self) -> npt.NDArray[np.int64]:
        return self.word_arrays[1]

    @cached_property
    def num_words(self) -> int:
        return len(self.word_arrays[1])

    @cached_property
    def word_chars(self) -> int:
        return int(self.word_lengths.sum())

    @cached_property
    def word_ranks(self) -> tuple[npt.NDArray[np.int64], int]:
        """(dense rank 1..V of each word, V the number of distinct words)."""
        ranks, vocab, _ = _dense_ranks(self.word_arrays[0])
        return ranks, vocab

    @cached_property
    def ngram_index(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.integer[Any]]]:
        """(order, lcp) over word positions, for every word n-gram size up to 10 at once.

        ``order`` sorts the positions by the (up to) 10 words starting there, lexicographically
        (the end of the text sorts first); ``lcp[j]`` is how many leading words positions
        ``order[j]`` and ``order[j + 1]`` share (at most 10). The positions whose n-grams are
        equal are then the runs of ``lcp >= n``, for every n <= 10, from one sort instead of
        one per n. The sort key is built by prefix doubling on dense word ranks: 4 words packed
        into one integer when the vocabulary allows it, then pairs of ranks.
        """
        ranks, vocab = self.word_ranks
        total = len(ranks)
        if total == 0:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64)
        padded = np.zeros(total + NGRAM_MAX, dtype=np.int64)
        padded[:total] = ranks
        at = [padded[k : k + total] for k in range(NGRAM_MAX)]
        bits = vocab.bit_length()
        packed = 4 * bits <= 62
        if packed:
            key4 = (at[0] << 3 * bits) | (at[1] << 2 * bits) | (at[2] << bits) | at[3]
        else:
            pairs, n_pairs, _ = _dense_ranks(at[0] * (vocab + 1) + at[1])
            pairs_padded = np.zeros(total + 2, dtype=np.int64)
            pairs_padded[:total] = pairs
            key4 = pairs * (n_pairs + 1) + pairs_padded[2:]
        fours, n_fours, _ = _dense_ranks(key4)
        fours_padded = np.zeros(total + 4, dtype=np.int64)
        fours_padded[:total] = fours
        if (n_fours + 1) ** 2 * (vocab + 1) ** 2 < 2**63:
            key = (fours * (n_fours + 1) + fours_padded[4:]) * (vocab + 1) + at[8]
            order = np.argsort(key * (vocab + 1) + at[9], kind=_SORT_KIND)
        else:
            order = np.lexsort((at[9], at[8], fours_padded[4:], fours))
        if packed:
            return order, _packed_lcp(order, key4, padded, bits)
        # Leading words shared by neighbours in that order (pads are 0, but a text end is met
        # by two different positions at different offsets, so a pad never matches a pad first).
        window = padded[order[:, None] + np.arange(NGRAM_MAX)]
        same = window[1:] == window[:-1]
        lcp = np.where(same.all(axis=1), NGRAM_MAX, np.argmin(same, axis=1))
        return order, lcp

    # ---- comments and strings -----------------------------------------------------------
    @cached_property
    def _scan(self) -> tuple[str, list[str], list[str]]:
        """(code text, comment texts, string literals): :func:`.scanner.scan`."""
        if self.family == "python" and native is not None:
            # The same split, in C, on the UTF-8 bytes: every character the scanner looks at
            # is ASCII, and UTF-8 never puts an ASCII byte inside a multi-byte character.
            return native.scan_python(b"\n" + self.encoded)
        return scan(self.text, self.family)

    @cached_property
    def code_text(self) -> str:
        """The text with comments removed (string literals kept)."""
        return self._scan[0]

    @cached_property
    def comment_texts(self) -> list[str]:
        return self._scan[1]

    @cached_property
    def strings(self) -> list[str]:
        return self._scan[2]

    @cached_property
    def comment_lines(self) -> list[str]:
        """The non-blank lines of the comments joined as upstream's lexer gives them
        (:func:`.scanner.comment_content`): comments the lexer leaves without their line
        break run on in one line."""
        joined = comment_content(self.lang, self.family, self._scan[1])
        return [line for line in joined.split("\n") if line.strip()]

    @cached_property
    def comment_chars(self) -> int:
        """Characters of the comments, see :func:`.scanner.comment_chars`."""
        return comment_chars(self.text, self.lang, self.family, self._scan[1])

    @cached_property
    def code_lines(self) -> list[str]:
        return [line for line in self.code_text.split("\n") if line.strip()]

    @cached_property
    def num_code_lines(self) -> int:
        if native is not None:
            return self.code_line_stats[0]
        code = self.code_text
        if not code.isascii():
            return len(self.code_lines)
        # The lines ``str.strip`` leaves non-empty: drop its ASCII whitespace but the line
        # break, then count the lines that are not empty (all in C). Without the rare
        # separators U+001C..U+001F, the squeezed lines already are that.
        raw = code.encode("ascii")
        if any(sep in raw for sep in _SEPARATORS):
            lines = raw.translate(None, _STRIP_BYTES).split(b"\n")
        else:
            lines = self.squeezed_code_lines
        return len(lines) - lines.count(b"")

    @cached_property
    def code_line_stats(self) -> tuple[int, int]:
        """With the C extension: (code lines, code lines repeating another one once whitespace
        is removed), see frac_lines_dupe_lines."""
        code = self.code_text.encode("utf-8", "surrogatepass")
        return native.code_line_stats(code)

    @cached_property
    def squeezed_code_lines(self) -> list[bytes]:
        """ASCII code text only: its lines with blanks, tabs, CR, FF and VT removed."""
        return self.code_text.encode("ascii").translate(None, _INLINE_SPACE_BYTES).split(b"\n")

    @cached_property
    def code_chars(self) -> int:
        return len(self.code_text)

    def count_code_lines(self, pattern: re.Pattern[str]) -> int:
        """Code lines on which ``pattern`` (compiled with re.M, anchored by ^) matches."""
        return len(pattern.findall(self.code_text))
