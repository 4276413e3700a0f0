"""Word n-gram signals equal a direct count of n-grams (the C loop, and every sort path of the
numpy n-gram index)."""

from __future__ import annotations

import sys
from collections import Counter

import pytest
from codekiln.stream.filters.document import Document, normal_words
from codekiln.stream.filters.signals import SIGNALS
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.stream.native import implementations


def _words(text: str) -> list[str]:
    return normal_words(text)


def naive_top(words: list[str], n: int) -> float:
    chars = sum(map(len, words))
    counts = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not counts or not chars:
        return 0.0
    gram, top = counts.most_common(1)[0]  # among ties, the first in the text (upstream's)
    if top < 2:
        return 0.0
    return sum(map(len, gram)) * top / chars


def naive_dupe(words: list[str], n: int) -> float:
    chars = sum(map(len, words))
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered: set[int] = set()
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered.update(range(i, i + n))
    return sum(len(words[j]) for j in covered) / chars if chars else 0.0


def check(text: str) -> None:
    """Every n-gram signal of ``text`` equals the direct count, in C and in numpy."""
    for _ in implementations():
        _check(text)


def _check(text: str) -> None:
    doc = Document(text)
    words = _words(text)
    for n in (2, 3, 4):
        got = SIGNALS[f"frac_chars_top_{n}grams"].fn(doc)
        assert got == pytest.approx(naive_top(words, n), abs=1e-12), n
    for n in range(5, 11):
        got = SIGNALS[f"frac_chars_dupe_{n}grams"].fn(doc)
        assert got == pytest.approx(naive_dupe(words, n), abs=1e-12), n
    distinct = len(set(words)) / len(words) if words else 1.0
    assert SIGNALS["frac_unique_words"].fn(doc) == pytest.approx(distinct)


# Few distinct words make long repeats likely: every lcp length 0..10 shows up.
_VOCAB = st.sampled_from(["a", "bb", "Ccc", "d_1", "ée", "x", "yy", "zz9"])


@settings(max_examples=150, deadline=None)
@given(st.lists(_VOCAB, max_size=60), st.sampled_from([" ", "\n", ", ", " -- "]))
def test_ngram_signals_equal_direct_count(words: list[str], sep: str) -> None:
    """Top and duplicate n-gram shares equal a direct count, ASCII and not, short and empty."""
    check(sep.join(words))


def test_ngram_signals_large_vocabulary() -> None:
    """Over 2**15 distinct words (ranks no longer pack 4 to an integer) gives the same values."""
    words = [f"w{i}" for i in range(40_000)]
    text = " ".join(words + words[100:160] + words[5:9] * 3 + ["w7", "w8"])
    doc = Document(text)
    assert doc.word_ranks[1] == 40_000
    check(text)


def test_ngram_signals_repeated_tail() -> None:
    """Repeats that run into the end of the text are bounded by it (no match past the end)."""
    check("a b c d e f g h i j k " * 3 + "a b c")


def test_words_sharing_internal_bytes_stay_different() -> None:
    """ "ぺ" and "z0" share CPython's str hash (same internal bytes); they are still two words."""
    assert hash("ぺ") == hash("z0") or sys.hash_info.algorithm != "siphash13"
    check("ぺ z0 ぺ x y z0 " * 5 + "q")
