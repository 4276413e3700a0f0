"""Natural-language signals: size, lines, words, n-gram repetition, character classes.

These apply to every document (code and text). Word n-gram signals follow the RedPajama-v2
definitions that OpenCoder's configuration names: *top n-gram* is the character share of the
most frequent word n-gram, *dupe n-grams* the character share of words covered by any n-gram
occurring twice or more.
"""

from __future__ import annotations

import re
from collections import Counter

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
# As upstream's text-document signals (quality_signals/doc.py and RedPajama-v2's, which it
# calls): "lines" are its raw lines, every line of the text, blank ones included (a text ending
# with a line break has no empty line after it).


def _raw_lines(doc: Document) -> list[str]:
    lines = doc.lines
    return lines[:-1] if lines[-1] == "" else lines


def _stripped_line_counts(doc: Document) -> Counter[str]:
    """How often each line, stripped, occurs (the blank line too); computed once per
    document for the two duplicate-line signals."""
    counts: Counter[str] | None = doc.__dict__.get("_stripped_line_counts")
    if counts is None:
        counts = Counter(line.strip() for line in _raw_lines(doc))
        doc.__dict__["_stripped_line_counts"] = counts
    return counts


@signal("frac_lines_dupe_text_lines")
def frac_lines_dupe_text_lines(doc: Document) -> float:
    """Non-blank lines (stripped) occurring more than once, every occurrence, over non-blank
    lines (text documents)."""
    counts = _stripped_line_counts(doc)
    nonblank = sum(counts.values()) - counts[""]
    return ratio(sum(n for line, n in counts.items() if n > 1 and line), nonblank)


@signal("frac_chars_dupe_text_lines")
def frac_chars_dupe_text_lines(doc: Document) -> float:
    """Characters of the lines (stripped) occurring more than once, every occurrence, over
    characters of all lines (stripped)."""
    counts = _stripped_line_counts(doc)
    dup = sum(len(line) * n for line, n in counts.items() if n > 1)
    return ratio(dup, sum(len(line) * n for line, n in counts.items()))


#: upstream's "read more" line ends (after trailing blanks and closing brackets).
_ELLIPSIS_SYMBOLS = ("...", "\u2026", "全文", "详情", "详细", "更多", "المزيد", "تفاصيل",
                     "اقرأ المزيد", "もっと", "詳細", "もっと読む")  # fmt: skip
_CLOSING = "]\u3011)>\u300b"
#: upstream's bullets (utils/constants.py BULLETS): U+2022 and the other round, square, diamond
#: and ballot-box symbols; not "-", "*" or "1." (Markdown lists are not bullet lines there).
_BULLETS = tuple(
    chr(c)
    for c in (0x2022, 0x2023, 0x2043, 0x204C, 0x204D, 0x2219, *range(0x25A0, 0x25B0), 0x25CB,
              0x25CF, 0x25E6, 0x25C6, 0x25C7, 0x25C8, 0x25C9, 0x25CA, *range(0x25D0, 0x25D7),
              0x25D8, 0x25D9, 0x25E2, 0x25E3, 0x25E4, 0x25E5, 0x25EF, 0x2611, 0x2612, 0x2B1B,
              0x2B1C, 0x2B24, 0x2B1E, 0x2B1F, 0x29BE)
)  # fmt: skip


@signal("frac_lines_end_with_ellipsis")
def frac_lines_end_with_ellipsis(doc: Document) -> float:
    """Lines ending (before trailing blanks and closing brackets) in an ellipsis or a "read
    more" word of upstream's list, over all lines."""
    lines = _raw_lines(doc)
    ends = sum(line.rstrip().rstrip(_CLOSING).endswith(_ELLIPSIS_SYMBOLS) for line in lines)
    return ratio(ends, len(lines))


@signal("frac_lines_start_with_bullet")
def frac_lines_start_with_bullet(doc: Document) -> float:
    """Lines starting (after blanks) with a bullet symbol, over all lines."""
    lines = _raw_lines(doc)
    return ratio(sum(line.lstrip().startswith(_BULLETS) for line in lines), len(lines))


#: nltk's ``wordpunct_tokenize`` on the raw text (case kept).
_RAW_TOKEN = re.compile(r"\w+|[^\w\s]+")


@signal("frac_words_all_caps")
def frac_words_all_caps(doc: Document) -> float:
    """Tokens (words and punctuation runs, as nltk's ``wordpunct_tokenize``) that are upper case
    (``str.isupper``: cased letters, all capitals), over tokens."""
    tokens = _RAW_TOKEN.findall(doc.text)
    return ratio(sum(map(str.isupper, tokens)), len(tokens))


#: upstream's sentence: from a word boundary, a run without sentence ends, then its ends.
_SENTENCE = re.compile("\\b[^.!?\u3002\uff01\uff1f\u061f]+[.!?\u3002\uff01\uff1f\u061f]*")


@signal("num_sentences")
def num_sentences(doc: Document) -> float:
    """Sentences: runs from a word boundary to and including the next ``.``, ``!``, ``?`` (or
    full-width or Arabic forms), as upstream counts them."""
    return float(sum(1 for _ in _SENTENCE.finditer(doc.text)))


_LINK_START = re.compile(r"\(https?://")
_NON_BLANKS = re.compile(r"\S*")


def _markup_chars(text: str) -> int:
    """Characters of upstream's ``\\(https?://\\S+\\)`` links plus those of its ``<.*?>`` tags
    (each pattern's non-overlapping matches, summed), in linear time: a link runs to the last
    ``)`` of its run of non-blanks, a tag to the first ``>`` of its line."""
    total = 0
    pos = 0
    run_end = -1  # end of the run of non-blanks the last link start was in
    while (m := _LINK_START.search(text, pos)) is not None:
        if m.start() >= run_end:
            match = _NON_BLANKS.match(text, m.end())
            run_end = match.end() if match else m.end()
        close = text.rfind(")", m.end() + 1, run_end)  # at least one character of the URL
        if close < 0:
            pos = run_end  # no later start in this run has a ")" after it either
            continue
        total += close + 1 - m.start()
        pos = close + 1
    pos = 0
    line_end = -1  # the line break ending the line of the last "<" (len(text) if none)
    while (start := text.find("<", pos)) >= 0:
        if start >= line_end:
            line_end = text.find("\n", start)
            line_end = len(text) if line_end < 0 else line_end
        gt = text.find(">", start + 1, line_end)
        if gt >= 0:
            total += gt + 1 - start
            pos = gt + 1
        else:  # no ">" on this line: no "<" of it starts a tag
            pos = line_end + 1
    return total


@signal("frac_chars_url_html")
def frac_chars_url_html(doc: Document) -> float:
    """Characters of Markdown link targets ``(http...)`` and HTML tags ``<...>`` (one line),
    over characters."""
    return ratio(_markup_chars(doc.text), len(doc.text))


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
