"""General code signals: duplicate lines, comments, string literals, encoded data, markers.

"Code lines" are the non-blank lines of the text once comments are removed. Markers are
matched as whole words (``\\b``), never as substrings: "generated" in an identifier such as
``regenerate_cache`` does not mark a file auto-generated.
"""

from __future__ import annotations

import re

import numpy as np
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals._registry import ratio, signal

#: Lines with fewer non-whitespace characters than this (``}``, ``end``, ``i++;``) are trivial
#: and ignored by the duplicate-line signal: every file repeats them.
TRIVIAL_LINE_CHARS = 5


@signal("frac_lines_dupe_lines")
def frac_lines_dupe_lines(doc: Document) -> float:
    """Code lines repeating an earlier code line (whitespace removed, trivial lines ignored)."""
    code = doc.code_text
    squeezed: list[str] | list[bytes]
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


#: Base64-alphabet bytes -> "a", every other byte -> " ".
_B64_MAP = bytes(
    ord("a") if b in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\n=" else 32
    for b in range(256)
)
_B64_RUN = b"a" * 64


def _maybe_base64(doc: Document) -> bool:
    """False when no 64-character base64-alphabet run exists (bytes scan, ASCII texts only)."""
    if not doc.text.isascii():
        return True
    return _B64_RUN in doc.encoded.translate(_B64_MAP)


def _maybe_hex(doc: Document) -> bool:
    """False when a run of 8 hex bytes is implausible: fewer than 8 ``0x``/``\\x`` prefixes and
    under 10% digits (an unprefixed hex dump is mostly digits)."""
    text = doc.text
    _, digits, space = doc.char_classes
    if digits > 0.1 * (len(text) - space):
        return True
    # The prefixes, counted on the UTF-8 bytes (the same ASCII pairs): find every x or X, look
    # at the byte before it. Neither pair can overlap itself, so this is str.count's figure.
    raw = np.frombuffer(doc.encoded, dtype=np.uint8)
    xs = np.flatnonzero((raw[1:] | 0x20) == ord("x")) + 1
    before = raw[xs - 1]
    prefixes = int(np.count_nonzero(before == ord("0")))
    prefixes += int(np.count_nonzero((before == ord("\\")) & (raw[xs] == ord("x"))))
    return prefixes >= 8


@signal("cate_encoded_data")
def cate_encoded_data(doc: Document) -> float:
    """1 for base64 runs (64+), hex byte runs, ``\\uXXXX`` runs longer than 1024 chars or >50%."""
    checks = (_maybe_base64(doc), _maybe_hex(doc), "\\u" in doc.text)
    total = 0
    for pattern, plausible in zip(_ENCODED, checks, strict=True):
        if not plausible:
            continue
        for match in pattern.finditer(doc.text):
            size = match.end() - match.start()
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
