"""Natural-language signals: size, lines, words, n-gram repetition, character classes.

These apply to every document (code and text). Word n-gram signals follow the RedPajama-v2
definitions that OpenCoder's configuration names: *top n-gram* is the character share of the
most frequent word n-gram, *dupe n-grams* the character share of words covered by any n-gram
occurring twice or more.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
from codekiln.stream.filters import document
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals.registry import ratio, signal

# ---- size ----------------------------------------------------------------------------------


@signal("num_chars")
def num_chars(doc: Document) -> float:
    """Number of characters of the text."""
    return float(len(doc.text))


@signal("size_file_byte")
def size_file_byte(doc: Document) -> float:
    """Size of the text in UTF-8 bytes."""
    return float(len(doc.encoded))


@signal("num_lines")
def num_lines(doc: Document) -> float:
    """Number of lines (``\\n``-separated; a trailing newline does not add a line)."""
    count = doc.line_count
    return float(count - 1 if doc.text.endswith("\n") or not doc.text else count)


@signal("num_words")
def num_words(doc: Document) -> float:
    """Number of normalised words (``\\w+`` runs of the lower-cased text)."""
    return float(doc.num_words)


@signal("mean_word_length")
def mean_word_length(doc: Document) -> float:
    """Mean length of the normalised words (0 without words)."""
    return ratio(doc.word_chars, doc.num_words)


@signal("num_chars_line_max")
def num_chars_line_max(doc: Document) -> float:
    """Length of the longest line, its line break included."""
    text = doc.text
    longest = doc.max_line_length
    cut = text.rfind("\n")
    if cut < 0:
        return float(longest)
    last = len(text) - cut - 1  # the last line has no break
    if longest > last:
        return float(longest + 1)
    # The last line is a longest one: a line before it as long would count its break too.
    before = Document(text[: cut + 1]).max_line_length if cut else 0
    return float(max(last, before + 1))


@signal("num_chars_line_mean")
def num_chars_line_mean(doc: Document) -> float:
    """Mean line length, line breaks included: characters over lines (a trailing line break
    does not start another line)."""
    return ratio(len(doc.text), num_lines(doc))


# ---- character classes ---------------------------------------------------------------------


@signal("frac_chars_replacement_symbols")
def frac_chars_replacement_symbols(doc: Document) -> float:
    """Share of U+FFFD replacement characters (a decoding that went wrong)."""
    return ratio(doc.text.count("\ufffd"), len(doc.text))


@signal("frac_chars_alphabet")
def frac_chars_alphabet(doc: Document) -> float:
    """Letters over non-whitespace characters."""
    alpha, _, space = doc.char_classes
    return ratio(alpha, len(doc.text) - space)


@signal("frac_chars_digital")
def frac_chars_digital(doc: Document) -> float:
    """Digits over non-whitespace characters."""
    _, digit, space = doc.char_classes
    return ratio(digit, len(doc.text) - space)


@signal("frac_chars_whitespace")
def frac_chars_whitespace(doc: Document) -> float:
    """Whitespace over all characters."""
    return ratio(doc.char_classes[2], len(doc.text))


# ---- word n-grams --------------------------------------------------------------------------


def _native_ngrams(doc: Document) -> tuple[float, ...] | None:
    """Every n-gram signal at once from the C extension (top 2-4, dupe 5-10), when built."""
    native = document.native
    if native is None:
        return None
    cached: tuple[float, ...] | None = doc.__dict__.get("_native_ngrams")
    if cached is None:
        ids, lengths = doc.word_arrays
        cached = native.ngram_signals(ids, lengths)
        doc.__dict__["_native_ngrams"] = cached
    return cached


def _top_ngram(doc: Document, n: int) -> float:
    native = _native_ngrams(doc)
    if native is not None:
        return native[n - 2]
    order, lcp = doc.ngram_index
    if len(order) < n or not doc.word_chars:
        return 0.0
    # Runs of equal n-grams in ``order``: a new run starts wherever neighbours share < n words.
    breaks = lcp < n
    run = np.zeros(len(order), dtype=np.int64)
    np.cumsum(breaks, out=run[1:])
    counts = np.bincount(run)
    top = int(counts.max())
    if top < 2:
        return 0.0
    # Several n-grams can share the top count: the one first in the text counts (upstream's
    # Counter.most_common): the least position among the runs of the top count.
    run_firsts = np.flatnonzero(np.concatenate(([True], breaks)))
    first = int(np.minimum.reduceat(order, run_firsts)[counts == top].min())
    cumulative = _cumulative_lengths(doc)
    chars = int(cumulative[first + n] - cumulative[first])
    return chars * top / doc.word_chars


def _cumulative_lengths(doc: Document) -> npt.NDArray[np.int64]:
    cached: npt.NDArray[np.int64] | None = doc.__dict__.get("_cumulative_lengths")
    if cached is None:
        cached = np.zeros(doc.num_words + 1, dtype=np.int64)
        np.cumsum(doc.word_lengths, out=cached[1:])
        doc.__dict__["_cumulative_lengths"] = cached
    return cached


DUPE_SIZES = tuple(range(5, 11))


def _dupe_shares(doc: Document) -> dict[int, float]:
    """{n: share of word chars covered by duplicated n-grams} for every n of DUPE_SIZES at once."""
    cached: dict[int, float] | None = doc.__dict__.get("_dupe_shares")
    if cached is not None:
        return cached
    native = _native_ngrams(doc)
    if native is not None:
        out = dict(zip(DUPE_SIZES, native[3:], strict=True))
        doc.__dict__["_dupe_shares"] = out
        return out
    total = doc.num_words
    out = dict.fromkeys(DUPE_SIZES, 0.0)
    order, lcp = doc.ngram_index
    if doc.word_chars and total >= DUPE_SIZES[0] and bool((lcp >= DUPE_SIZES[0]).any()):
        # Longest n-gram each position shares with another one: its larger lcp with its two
        # neighbours in ``order``; the n-gram there is duplicated when that is at least n.
        shared = np.zeros(total, dtype=np.int8)
        shared[1:] = lcp
        np.maximum(shared[:-1], lcp, out=shared[:-1])
        longest = np.empty(total, dtype=np.int8)
        longest[order] = shared
        sizes = np.array(DUPE_SIZES, dtype=np.int32)[:, None]
        dup = longest >= sizes
        # Word j is covered when an n-gram starting at one of positions j-n+1 .. j is duplicated:
        # the last duplicated start at or before j is within n-1 words.
        positions = np.arange(total, dtype=np.int32)
        never = np.int32(-(total + DUPE_SIZES[-1]))  # before any window, however short the text
        last = np.maximum.accumulate(np.where(dup, positions, never), axis=1)
        covered = last > positions - sizes
        shares = (covered @ doc.word_lengths) / doc.word_chars
        out = {n: float(share) for n, share in zip(DUPE_SIZES, shares, strict=True)}
    doc.__dict__["_dupe_shares"] = out
    return out


def _dupe_ngrams(doc: Document, n: int) -> float:
    return _dupe_shares(doc)[n]


def _register_ngram_signals() -> None:
    for n in (2, 3, 4):

        def top(doc: Document, n: int = n) -> float:
            return _top_ngram(doc, n)

        top.__doc__ = f"Character share of the most frequent word {n}-gram (times its count)."
        signal(f"frac_chars_top_{n}grams")(top)
    for n in DUPE_SIZES:

        def dupe(doc: Document, n: int = n) -> float:
            return _dupe_ngrams(doc, n)

        dupe.__doc__ = f"Character share of words covered by word {n}-grams seen twice or more."
        signal(f"frac_chars_dupe_{n}grams")(dupe)


_register_ngram_signals()


@signal("frac_unique_words")
def frac_unique_words(doc: Document) -> float:
    """Distinct normalised words over words (1 without words: nothing repeats)."""
    if not doc.num_words:
        return 1.0
    return doc.word_ranks[1] / doc.num_words


@signal("entropy_unigram")
def entropy_unigram(doc: Document) -> float:
    """Shannon entropy (nats) of the word unigram distribution."""
    if not doc.num_words:
        return 0.0
    # Sorted, so that the float sum does not depend on how the word ids rank the words.
    counts = np.sort(np.bincount(doc.word_ranks[0])[1:])
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


# ---- lines of prose ------------------------------------------------------------------------


def _line_dupes(lines: list[str]) -> tuple[int, int, int, int]:
    """(duplicate lines, lines, duplicate-line chars, chars) counting repeats after the first."""
    seen: set[str] = set()
    dup_lines = dup_chars = total_chars = counted = 0
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        counted += 1
        total_chars += len(stripped)
        if stripped in seen:
            dup_lines += 1
            dup_chars += len(stripped)
        else:
            seen.add(stripped)
    return dup_lines, counted, dup_chars, total_chars


@signal("frac_lines_dupe_text_lines")
def frac_lines_dupe_text_lines(doc: Document) -> float:
    """Non-blank lines that repeat an earlier line, over non-blank lines (text documents)."""
    dup, lines, _, _ = _line_dupes(doc.lines)
    return ratio(dup, lines)


@signal("frac_chars_dupe_text_lines")
def frac_chars_dupe_text_lines(doc: Document) -> float:
    """Characters of repeated non-blank lines, over characters of non-blank lines."""
    _, _, dup_chars, chars = _line_dupes(doc.lines)
    return ratio(dup_chars, chars)


_ELLIPSIS_END = re.compile(r"(?:\.\.\.|\u2026|read more|more\s*>+)\s*$", re.I)
_BULLET_START = re.compile(r"^\s*(?:[-*\u2022\u25cf\u25aa\u2023\u2043]|\d+[.)])\s")


@signal("frac_lines_end_with_ellipsis")
def frac_lines_end_with_ellipsis(doc: Document) -> float:
    """Non-blank lines ending in an ellipsis or "read more", over non-blank lines."""
    lines = [line for line in doc.lines if line.strip()]
    return ratio(sum(1 for line in lines if _ELLIPSIS_END.search(line)), len(lines))


@signal("frac_lines_start_with_bullet")
def frac_lines_start_with_bullet(doc: Document) -> float:
    """Non-blank lines starting with a bullet or a list number, over non-blank lines."""
    lines = [line for line in doc.lines if line.strip()]
    return ratio(sum(1 for line in lines if _BULLET_START.match(line)), len(lines))


_RAW_WORD = re.compile(r"[^\W\d_]{2,}")


@signal("frac_words_all_caps")
def frac_words_all_caps(doc: Document) -> float:
    """Words (2+ letters, original case) written in capitals only, over such words."""
    words = _RAW_WORD.findall(doc.text)
    return ratio(sum(1 for word in words if word.isupper()), len(words))


_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f]+(?:\s|$)")


@signal("num_sentences")
def num_sentences(doc: Document) -> float:
    """Sentence ends (``.``, ``!``, ``?`` and their full-width forms followed by a space)."""
    return float(max(1, len(_SENTENCE_END.findall(doc.text))) if doc.text.strip() else 0)


_MARKUP = re.compile(r"https?://\S+|www\.\S+|</?[A-Za-z][^<>\n]{0,200}>")


@signal("frac_chars_url_html")
def frac_chars_url_html(doc: Document) -> float:
    """Characters of hyperlinks and HTML tags, over characters."""
    return ratio(sum(map(len, _MARKUP.findall(doc.text))), len(doc.text))


_FULLWIDTH_BRACKETS = re.compile("[\u3010\u3011\u300a\u300b\uff08\uff09\u300c\u300d]")


@signal("frac_chars_full_bracket")
def frac_chars_full_bracket(doc: Document) -> float:
    """Full-width brackets (U+3010/11, U+300A/B, U+FF08/09, U+300C/D) over characters."""
    return ratio(len(_FULLWIDTH_BRACKETS.findall(doc.text)), len(doc.text))


# ``\b0[xX][0-9a-fA-F]+\b``, written to start with a literal (so that the regex engine skips
# to candidate positions); the leading word boundary is checked on each match instead.
_HEX_WORD = re.compile(r"0[xX][0-9a-fA-F]+\b")


@signal("frac_chars_hex_words")
def frac_chars_hex_words(doc: Document) -> float:
    """Characters of ``0x...`` hexadecimal words, over code characters."""
    code = doc.code_text
    if "0x" not in code and "0X" not in code:
        return 0.0
    chars = 0
    for match in _HEX_WORD.finditer(code):
        start = match.start()
        # A match preceded by a word character is inside a word (``a0x1``): not a hex word,
        # and no hex word can start within it either (all its characters are word chars).
        if start == 0 or not (code[start - 1].isalnum() or code[start - 1] == "_"):
            chars += match.end() - start
    return ratio(chars, doc.code_chars)
