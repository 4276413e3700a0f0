"""Copyright / licence header removal, at the top of a file only.

The header region is what comes before the first line of code: a shebang, encoding and other
protected lines, blank lines, line comments, block comments and (Python) the module docstring.
Nothing after the first line of code is ever touched: the widely copied RedPajama routine cuts
the first block comment *anywhere* in the file, and strips shebangs and ``coding:`` lines.

Inside the header region, comments are split into paragraphs (separated by blank or empty
comment lines). A paragraph is licence text if it carries a strong marker (``Copyright``,
``(c) 2020``, ``SPDX-License-Identifier``, ``Licensed under``, ``Permission is hereby granted``,
``GNU General Public License``, ``THE SOFTWARE IS PROVIDED``...), or if it directly follows a
licence paragraph and speaks of licences, warranties, URLs or redistribution (the Apache
header's URL and disclaimer paragraphs). Licence paragraphs are removed; other comments are
kept (module descriptions, author notes, TODOs). A block comment or docstring made only of
licence text goes whole; a mixed one loses only the licence lines strictly inside it. Protected
lines are always kept, even inside a licence paragraph: shebang, PEP 263 / Ruby encoding and
magic comments, Emacs/Vim modelines, Go build constraints and ``//go:`` directives, ``<?xml``,
``<?php``, ``<!DOCTYPE``.

What was removed is recorded in ``meta["copyright_removed"]`` (the text, capped) and
``meta["copyright_removed_lines"]``. A file that was nothing but a licence is dropped
(``copyright:only_licence``), since no code is left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from codekiln.stream.record import Record
from codekiln.stream.stage import MapStage
from codekiln.stream.transform.comment_syntax import CommentSyntax, syntax_for

STRONG = re.compile(
    r"copyright\b|\(c\)\s*(?:\d{4}|[a-z])|©|\ball rights reserved\b|spdx-license-identifier"
    r"|\blicen[cs]ed (?:under|to|as)\b|\bpermission is hereby granted\b"
    r"|\bgnu (?:lesser |library |affero )?general public licen[cs]e\b"
    r"|\b(?:apache|mit|bsd|isc|mozilla public|eclipse public|boost software) licen[cs]e\b"
    r"|\bthe software is provided\b|\bredistribution and use in source and binary forms\b"
    r"|\bis distributed in the hope that it will be useful\b|\bwithout (?:any )?warrant(?:y|ies)\b"
    r"|\bthis (?:program|file|library|software|code) is free software\b"
    r"|\bunder the terms of the\b.*\blicen[cs]e\b",
    re.IGNORECASE,
)
#: A lower-case word from each alternative of STRONG (``©`` aside: never in ASCII text): an
#: ASCII paragraph holding none of them cannot match it, and most comments hold none.
_STRONG_WORDS = (
    "copyright", "(c)", "all rights reserved", "spdx-license-identifier", "licen",
    "permission is hereby granted", "the software is provided", "redistribution and use",
    "is distributed in the hope", "warrant", "is free software",
)  # fmt: skip


def is_strong(text: str) -> bool:
    """Whether ``text`` carries a strong licence marker (STRONG matches somewhere in it)."""
    if text.isascii():
        # Only for ASCII: under re.IGNORECASE some non-ASCII letters match ASCII ones (U+017F
        # LONG S matches "s") that str.lower() leaves alone.
        lowered = text.lower()
        if not any(word in lowered for word in _STRONG_WORDS):
            return False
    return STRONG.search(text) is not None


CONTINUATION = re.compile(
    r"licen[cs]e|warrant|https?://|liabilit|redistribut|permission|conditions|you may not use"
    r"|applicable law|author|contributor",
    re.IGNORECASE,
)
#: Protected whatever they look like (at the top of a file).
PROTECTED_LINE = re.compile(r"^\s*(?:<\?xml\b|<\?php\b|<!DOCTYPE\b)", re.IGNORECASE)
#: Protected when they are line comments: encoding and magic comments, modelines, directives.
PROTECTED_COMMENT = re.compile(
    r".*?coding[:=][ \t]*[-\w.]+"  # PEP 263 and the like
    r"|\s*(?:frozen_string_literal|encoding|warn_indent|shareable_constant_value)\s*:"
    r"|.*-\*-.*-\*-"  # Emacs modeline
    r"|.*\bvim?:\s*(?:set\s)?\w+"  # Vim modeline
    r"|\s*\+build\b|go:\w+",  # Go build constraints and //go: directives
    re.IGNORECASE,
)
DECORATION = re.compile(r"^[\W_]*$")


def _is_protected(line: str, index: int, syntax: CommentSyntax) -> bool:
    if line.startswith("#!"):
        return index == 0  # a shebang is only a shebang on line 1
    if PROTECTED_LINE.match(line):
        return True
    stripped = line.lstrip()
    prefix = next((p for p in syntax.line if stripped.startswith(p)), None)
    return prefix is not None and bool(PROTECTED_COMMENT.match(stripped[len(prefix) :]))


@dataclass
class _Para:
    lines: list[int] = field(default_factory=list)
    text: str = ""


@dataclass
class Result:
    text: str
    removed: str
    removed_lines: int
    only_licence: bool


def strip_licence_header(text: str, syntax: CommentSyntax, max_header_lines: int = 400) -> Result:
    """Remove licence paragraphs from the header region of ``text`` (see module docstring)."""
    lines = text.splitlines(keepends=True)
    n = min(len(lines), max_header_lines)
    remove: set[int] = set()
    comment_lines: list[int] = []  # header lines that are line comments (for orphan cleanup)
    protected: set[int] = set()
    para = _Para()
    prev_licence = False
    i = 0

    def close_para() -> None:
        nonlocal para, prev_licence
        if para.lines:
            licence = is_strong(para.text) or (
                prev_licence and bool(CONTINUATION.search(para.text))
            )
            if licence:
                remove.update(j for j in para.lines if j not in protected)
            prev_licence = licence
        para = _Para()

    while i < n:
        line = lines[i]
        stripped = line.strip()
        if _is_protected(line, i, syntax):
            protected.add(i)
            para.lines.append(i)  # kept even if the paragraph goes
            i += 1
            continue
        if not stripped:
            close_para()
            i += 1
            continue
        prefix = next((p for p in syntax.line if stripped.startswith(p)), None)
        if prefix is not None:
            content = stripped[len(prefix) :].strip()
            comment_lines.append(i)
            if DECORATION.match(content):
                close_para()
                i += 1
                continue
            para.lines.append(i)
            para.text += content + "\n"
            i += 1
            continue
        block = next(((o, c) for o, c in syntax.block if stripped.startswith(o)), None)
        if block is None:
            break  # the first line of code: the header region ends here
        close_para()
        end = _block_end(lines, i, block, n)
        if end is None:
            break  # unterminated, or code after the closer on its line: leave it alone
        prev_licence = _block(lines, i, end, block, remove=remove, prev_licence=prev_licence)
        i = end + 1
    close_para()

    if remove:
        # Orphaned rulers and empty comment lines: those touching a removed line go with it
        # (transitively), and if no kept line comment has real content left, all of them go.
        rulers = [j for j in comment_lines if j not in remove and j not in protected
                  and _is_decoration(lines[j], syntax)]  # fmt: skip
        changed = True
        while changed:
            changed = False
            for j in rulers:
                if j not in remove and (
                    _neighbour(lines, j, -1) in remove or _neighbour(lines, j, 1) in remove
                ):
                    remove.add(j)
                    changed = True
        kept_comments = [j for j in comment_lines if j not in remove and j not in protected]
        if all(_is_decoration(lines[j], syntax) for j in kept_comments):
            remove.update(kept_comments)
    if not remove:
        return Result(text, "", 0, False)
    header_end = max(remove) + 1
    kept_header = [lines[j] for j in range(header_end) if j not in remove]
    # Collapse the blank lines the removal left behind.
    tidy: list[str] = []
    for line in kept_header:
        if not line.strip() and (not tidy or not tidy[-1].strip()):
            continue
        tidy.append(line)
    rest = lines[header_end:]
    while rest and not rest[0].strip() and (not tidy or not tidy[-1].strip()):
        rest = rest[1:]
    new_text = "".join(tidy + rest)
    removed = "".join(lines[j] for j in sorted(remove))
    only = all(
        not ln.strip() or _is_protected(ln, k, syntax) for k, ln in enumerate(new_text.splitlines())
    )
    return Result(new_text, removed, len(remove), only)


def _neighbour(lines: list[str], j: int, step: int) -> int:
    """The nearest non-blank line above (step -1) or below (step 1) line ``j``."""
    k = j + step
    while 0 <= k < len(lines) and not lines[k].strip():
        k += step
    return k


def _is_decoration(line: str, syntax: CommentSyntax) -> bool:
    stripped = line.strip()
    prefix = next((p for p in syntax.line if stripped.startswith(p)), "")
    return bool(DECORATION.match(stripped[len(prefix) :].strip()))


def _block_end(lines: list[str], start: int, block: tuple[str, str], n: int) -> int | None:
    opener, closer = block
    first = lines[start].strip()
    search_from = len(opener)
    j = start
    text = first
    while True:
        pos = text.find(closer, search_from)
        if pos != -1:
            tail = text[pos + len(closer) :].strip()
            return j if not tail else None
        j += 1
        if j >= n:
            return None
        text = lines[j].strip()
        search_from = 0


def _block(
    lines: list[str],
    start: int,
    end: int,
    block: tuple[str, str],
    *,
    remove: set[int],
    prev_licence: bool,
) -> bool:
    """Decide on one block comment or docstring; returns whether it held licence text."""
    opener, closer = block
    contents: list[str] = []
    for j in range(start, end + 1):
        s = lines[j].strip()
        if j == start:
            s = s[len(opener) :]
        if j == end:
            s = s[: s.rfind(closer)] if closer in s else s
        contents.append(s.strip().lstrip("*#!-=~ ").strip())
    # Paragraphs inside the block, as (line indices, text).
    paras: list[tuple[list[int], str]] = []
    cur: list[int] = []
    cur_text = ""
    for offset, content in enumerate(contents):
        if DECORATION.match(content):
            if cur:
                paras.append((cur, cur_text))
            cur, cur_text = [], ""
        else:
            cur.append(start + offset)
            cur_text += content + "\n"
    if cur:
        paras.append((cur, cur_text))
    flags = []
    licence_prev = prev_licence
    for _, ptext in paras:
        licence = is_strong(ptext) or (licence_prev and bool(CONTINUATION.search(ptext)))
        flags.append(licence)
        licence_prev = licence
    if not any(flags):
        return False
    if all(flags):
        remove.update(range(start, end + 1))
        return True
    # Mixed: remove licence paragraphs strictly inside the delimiters; keep the rest.
    for (idx, _), licence in zip(paras, flags, strict=True):
        if licence and start not in idx and end not in idx:
            remove.update(idx)
    return flags[-1]


class CopyrightStage(MapStage):
    """Removes copyright / licence headers; records what was removed."""

    name: ClassVar[str] = "copyright"
    cpu_bound: ClassVar[bool] = True

    def __init__(
        self,
        *,
        max_header_lines: int = 400,
        max_recorded_chars: int = 4000,
        drop_only_licence: bool = True,
    ) -> None:
        if not isinstance(max_header_lines, int) or max_header_lines < 1:
            raise ValueError(
                f"copyright.max_header_lines: must be a positive integer, got {max_header_lines!r}"
            )
        if not isinstance(max_recorded_chars, int) or max_recorded_chars < 0:
            raise ValueError(
                "copyright.max_recorded_chars: must be a non-negative integer, "
                f"got {max_recorded_chars!r}"
            )
        self.max_header_lines = max_header_lines
        self.max_recorded_chars = max_recorded_chars
        self.drop_only_licence = drop_only_licence

    def map(self, record: Record) -> Record:
        if record.drop_reason is not None:
            return record
        syntax = syntax_for(record.lang, str(record.meta.get("lang_type", "programming")))
        if syntax is None:
            return record
        result = strip_licence_header(record.text, syntax, self.max_header_lines)
        if not result.removed_lines:
            return record
        record.meta["copyright_removed"] = result.removed[: self.max_recorded_chars]
        record.meta["copyright_removed_lines"] = result.removed_lines
        if result.only_licence and self.drop_only_licence:
            record.drop_reason = f"{self.name}:only_licence"
            return record
        record.text = result.text
        return record
