"""General code signals: duplicate lines, comments, string literals, encoded data, markers.

"Code lines" are the non-blank lines of the text once comments are removed. Markers are
matched as whole words (``\\b``), never as substrings: "generated" in an identifier such as
``regenerate_cache`` does not mark a file auto-generated.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
from codekiln.stream.filters import document
from codekiln.stream.filters.document import TRIVIAL_LINE_CHARS, Document
from codekiln.stream.filters.signals._registry import ratio, signal


@signal("frac_lines_dupe_lines")
def frac_lines_dupe_lines(doc: Document) -> float:
    """Code lines repeating an earlier code line (whitespace removed, trivial lines ignored)."""
    code = doc.code_text
    squeezed: list[str] | list[bytes]
    if document._native is not None:
        _, keyed, distinct = doc.code_line_stats
        return ratio(keyed - distinct, keyed)
    if code.isascii():
        # Same lines as the regex below, as bytes: one C-level delete instead of a regex sub.
        squeezed = doc.squeezed_code_lines
    else:
        squeezed = _INLINE_SPACE.sub("", code).split("\n")
    keys = [key for key in squeezed if len(key) >= TRIVIAL_LINE_CHARS]
    return ratio(len(keys) - len(set(keys)), len(keys))


_INLINE_SPACE = re.compile(r"[ \t\r\f\v]+")


@signal("frac_chars_comments")
def frac_chars_comments(doc: Document) -> float:
    """Comment characters (docstrings count as comments in Python) over characters."""
    return ratio(doc.comment_chars, len(doc.text))


@signal("cate_xml_start")
def cate_xml_start(doc: Document) -> float:
    """1 when an XML declaration (``<?xml``) appears in the first 100 characters."""
    return 1.0 if "<?xml" in doc.text[:100] else 0.0


_AUTOGEN = re.compile(
    r"\b(?:auto-?generated|automatically\s+generated|generated\s+(?:by|from|with|using)"
    r"|code\s+generator|do\s+not\s+(?:edit|modify)|don'?t\s+edit)\b",
    re.I,
)


@signal("cate_autogen")
def cate_autogen(doc: Document) -> float:
    """1 when an auto-generation marker phrase (whole words) is in the first 200 characters."""
    return 1.0 if _AUTOGEN.search(doc.text[:200]) else 0.0


#: A string literal holding more than this many whitespace-separated tokens is "long".
LONG_STRING_TOKENS = 20
#: A token longer than this inside a literal is a "long word" (URLs excepted).
LONG_WORD_CHARS = 20


@signal("frac_lines_long_string")
def frac_lines_long_string(doc: Document) -> float:
    """Lines spanned by string literals of more than 20 tokens, over code lines."""
    lines = 0
    for literal in doc.strings:
        if len(literal) > 2 * LONG_STRING_TOKENS and len(literal.split()) > LONG_STRING_TOKENS:
            lines += literal.count("\n") + 1
    return min(1.0, ratio(lines, doc.num_code_lines))


@signal("frac_chars_string_length")
def frac_chars_string_length(doc: Document) -> float:
    """Characters inside string literals (quotes included) over code characters."""
    return ratio(sum(map(len, doc.strings)), doc.code_chars)


@signal("frac_chars_long_word_length")
def frac_chars_long_word_length(doc: Document) -> float:
    """Characters of >20-character non-URL tokens inside string literals, over code chars."""
    chars = 0
    for literal in doc.strings:
        if len(literal) <= LONG_WORD_CHARS:
            continue
        for token in literal.split():
            if len(token) > LONG_WORD_CHARS and "://" not in token:
                chars += len(token)
    return ratio(chars, doc.code_chars)


# Each pattern starts with a character class or literal so that the regex engine can skip
# ahead to candidate positions (a leading group or word boundary makes it try every
# position: 4x slower).
_ENCODED = (
    re.compile(r"[A-Za-z0-9+/\n=]{64,}"),
    re.compile(r"[0-9a-fA-F]{2}(?:,\s*|\b\s*)(?:(?:0x|\\x)?[0-9a-fA-F]{2}(?:,\s*|\b\s*)){7,}"),
    re.compile(r"\\u[0-9A-Fa-f]{4}(?:\\u[0-9A-Fa-f]{4}){7,}"),
)
#: A single encoded run longer than this, or all runs over this share of the text, fire.
ENCODED_MAX_RUN_CHARS = 1024
ENCODED_MAX_FRACTION = 0.5


#: Base64-alphabet bytes -> 1, every other byte -> 0.
_B64_MAP = bytes(
    1 if b in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\n=" else 0
    for b in range(256)
)
_B64_RUN = b"\x01" * 64
#: What the hex-run pattern can match (ASCII): hex digits, the ``0x``/``\x`` prefix letters,
#: the comma and whitespace (``\s`` of a str pattern, U+001C..U+001F included) -> 1; else 0.
_HEX_RUN_MAP = bytes(
    1 if chr(b) in "0123456789abcdefABCDEFxX\\," or chr(b).isspace() else 0 for b in range(128)
) + bytes(128)
_HEX_DIGIT_MAP = bytes(1 if chr(b) in "0123456789abcdefABCDEF" else 0 for b in range(256))
#: A hex run holds 8 pairs of hex digits at least.
_HEX_RUN_DIGITS = 16


def _runs(flags: bytes, min_length: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(starts, ends) of the maximal runs of 1 bytes in ``flags`` at least ``min_length`` long."""
    edges = np.zeros(len(flags) + 2, dtype=np.int8)
    edges[1:-1] = np.frombuffer(flags, dtype=np.int8)
    bounds = np.flatnonzero(np.diff(edges))
    starts, ends = bounds[0::2], bounds[1::2]
    keep = ends - starts >= min_length
    return starts[keep], ends[keep]


def _base64_sizes(doc: Document) -> list[int]:
    """Sizes of the matches of the base64 pattern: its runs of 64+ alphabet characters are
    maximal runs, found on the bytes (a non-ASCII character is never in the alphabet, and
    splits a run as its bytes do)."""
    if document._native is not None:
        flat = np.frombuffer(document._native.base64_runs(doc.encoded, 64), dtype=np.int64)
        starts, ends = flat[0::2], flat[1::2]
    else:
        flags = doc.encoded.translate(_B64_MAP)
        if _B64_RUN not in flags:
            return []
        starts, ends = _runs(flags, 64)
    sizes: list[int] = (ends - starts).tolist()
    return sizes


def _hex_sizes(doc: Document) -> list[int]:
    """Sizes of the matches of the hex-run pattern. On ASCII texts only the runs of characters
    the pattern can match that hold 16+ hex digits are searched (every match lies inside one
    such run); the search window ends one character past the run, so that ``\\b`` sees it."""
    text, pattern = doc.text, _ENCODED[1]
    if not text.isascii():
        return [m.end() - m.start() for m in pattern.finditer(text)]
    sizes: list[int] = []
    for start, end in _hex_runs(doc.encoded):
        sizes.extend(m.end() - m.start() for m in pattern.finditer(text, start, end + 1))
    return sizes


def _hex_runs(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the runs of hex-run characters holding 16+ hex digits (ASCII bytes)."""
    if document._native is not None:
        flat = np.frombuffer(document._native.hex_runs(data, _HEX_RUN_DIGITS), dtype=np.int64)
        return list(zip(flat[0::2].tolist(), flat[1::2].tolist(), strict=True))
    starts, ends = _runs(data.translate(_HEX_RUN_MAP), 1)
    if not len(starts):
        return []
    digits = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum(np.frombuffer(data.translate(_HEX_DIGIT_MAP), np.uint8), out=digits[1:])
    keep = digits[ends] - digits[starts] >= _HEX_RUN_DIGITS
    return list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))


@signal("cate_encoded_data")
def cate_encoded_data(doc: Document) -> float:
    """1 for base64 runs (64+), hex byte runs, ``\\uXXXX`` runs longer than 1024 chars or >50%."""
    total = 0
    for sizes in (
        _base64_sizes(doc),
        _hex_sizes(doc),
        [m.end() - m.start() for m in _ENCODED[2].finditer(doc.text)] if "\\u" in doc.text else [],
    ):
        for size in sizes:
            if size > ENCODED_MAX_RUN_CHARS:
                return 1.0
            total += size
    return 1.0 if total > ENCODED_MAX_FRACTION * len(doc.text) else 0.0


_PROMPT = re.compile(r"\b(?:todo|fixme|your\s+code\s+here)\b", re.I)


@signal("frac_lines_prompt_comments")
def frac_lines_prompt_comments(doc: Document) -> float:
    """Comment lines containing TODO, FIXME or "your code here" (whole words), over lines."""
    comments = doc.comment_texts
    if not comments:
        return 0.0
    joined = "\n".join(comments)
    lowered = joined.lower()
    if "todo" not in lowered and "fixme" not in lowered and "your" not in lowered:
        return 0.0
    if not _PROMPT.search(joined):
        return 0.0
    hits = 0
    for comment in comments:
        if _PROMPT.search(comment):
            hits += sum(1 for line in comment.split("\n") if _PROMPT.search(line))
    return ratio(hits, doc.line_count)


# Prefix match on purpose: assertEqual, assert_eq!, ASSERT_TRUE are assertions too.
_ASSERT = re.compile(r"\bassert", re.I)


@signal("frac_lines_assert")
def frac_lines_assert(doc: Document) -> float:
    """Code lines with a word starting with ``assert`` (any case), over code lines."""
    code = doc.code_text
    lowered = code.lower()
    if "assert" not in lowered:
        return 0.0
    if not code.isascii():
        lines = doc.code_lines
        hits = sum(1 for line in lines if "assert" in line.lower() and _ASSERT.search(line))
        return ratio(hits, doc.num_code_lines)
    # ASCII: find the occurrences in the lower-cased text (same positions) and count each line
    # once, when an occurrence on it starts a word (what ``\bassert`` requires).
    hits = 0
    pos = lowered.find("assert")
    while pos != -1:
        before = lowered[pos - 1] if pos else " "
        if before.isalnum() or before == "_":
            pos = lowered.find("assert", pos + 1)
            continue
        hits += 1
        line_end = lowered.find("\n", pos)
        if line_end == -1:
            break
        pos = lowered.find("assert", line_end)
    return ratio(hits, doc.num_code_lines)
