"""One document under analysis: the shared intermediate results every signal reads.

Each analysis (lines, normalised words, comment and string spans, word n-gram hashes) is
computed once, on first use, and cached on the :class:`Document`. A signal that needs an
analysis which failed (ran out of time) fails too and is counted; the other signals go on.

Definitions used throughout (see docs/stream-stage2.md):

- *words*: maximal runs of ``\\w`` characters of the lower-cased text (punctuation and
  whitespace separate words);
- *lines*: the text split on ``\\n``;
- *code text*: the text with comments removed (the comment syntax comes from the language's
  family, :data:`COMMENT_FAMILY`); *code lines*: its non-blank lines;
- *string literals*: quoted literals of the family's syntax, found in the same single scan
  that finds comments (so a ``//`` inside a string is not a comment and vice versa).
"""

from __future__ import annotations

import hashlib
import re
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

# Language (Linguist name, lower-cased) -> comment/string syntax family.
_C_FAMILY = (
    "c",
    "c++",
    "c#",
    "java",
    "javascript",
    "typescript",
    "tsx",
    "jsx",
    "go",
    "rust",
    "kotlin",
    "swift",
    "scala",
    "dart",
    "objective-c",
    "objective-c++",
    "php",
    "groovy",
    "css",
    "scss",
    "less",
    "cuda",
    "glsl",
    "hlsl",
    "protocol buffer",
    "d",
    "zig",
    "solidity",
    "verilog",
    "systemverilog",
    "apex",
    "haxe",
    "vala",
    "json5",
    "jsonc",
)
_HASH_FAMILY = (
    "shell",
    "bash",
    "zsh",
    "powershell",
    "ruby",
    "perl",
    "r",
    "yaml",
    "toml",
    "makefile",
    "dockerfile",
    "cmake",
    "nix",
    "tcl",
    "awk",
    "elixir",
    "crystal",
    "julia",
    "nim",
    "coffeescript",
    "ini",
    "gnuplot",
    "starlark",
    "hcl",
    "graphql",
)
_DASH_FAMILY = ("sql", "plsql", "tsql", "plpgsql", "lua", "haskell", "elm", "ada", "vhdl")
_MARKUP_FAMILY = ("html", "xml", "svg", "vue", "xslt", "html+erb", "html+php")
COMMENT_FAMILY: dict[str, str] = {
    **dict.fromkeys(_C_FAMILY, "c"),
    **dict.fromkeys(_HASH_FAMILY, "hash"),
    **dict.fromkeys(_DASH_FAMILY, "dash"),
    **dict.fromkeys(_MARKUP_FAMILY, "markup"),
    "python": "python",
    "cython": "python",
    "starlark": "python",
}  # fmt: skip

# One scanner per family: comments and string literals in a single left-to-right pass, as
# ``split`` on one capturing group (pieces of code and matches alternate, all built in C).
# Every alternative starts with a literal character so that the regex engine can skip straight
# to candidate positions (a leading class, group or look-behind makes it try every position:
# 4x slower), and none can backtrack quadratically: unterminated block comments and strings run
# to the end of the text (or line) instead of being retried at each position. A match is told
# apart by its first character (:data:`_COMMENT_STARTS`).
_DQ = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?'
_SQ = r"'[^'\\\n]*(?:\\.[^'\\\n]*)*'?"
_BLOCK = r"/\*[^*]*(?:\*(?!/)[^*]*)*(?:\*/)?"
_TDQ = r'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:""")?'
_TSQ = r"'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*(?:''')?"
_SCANNERS: dict[str, re.Pattern[str]] = {
    "c": re.compile(
        rf'(//[^\n]*|{_BLOCK}|@"[^"]*(?:""[^"]*)*"?|`[^`\\]*(?:\\.[^`\\]*)*`?|{_DQ}|{_SQ})',
        re.S,
    ),
    # A triple-quoted string that starts its line is a docstring, i.e. a comment: the scanned
    # text gets a leading newline so a docstring on the first line is found the same way.
    "python": re.compile(
        rf"(#[^\n]*|\n[ \t]*[rRuU]?(?:{_TDQ}|{_TSQ})|{_TDQ}|{_TSQ}|{_DQ}|{_SQ})", re.S
    ),
    # ``#`` not preceded by a word character, ``$`` or a backslash (shell ``$#``, ``\#``).
    "hash": re.compile(rf"(#(?<![\w$\\]#)[^\n]*|{_DQ}|{_SQ})", re.S),
    "dash": re.compile(rf"(--[^\n]*|{_BLOCK}|'[^']*(?:''[^']*)*'?|{_DQ})", re.S),
    "markup": re.compile(r"(<!--[^-]*(?:-(?!->)[^-]*)*(?:-->)?)", re.S),
}
_COMMENT_STARTS: dict[str, str] = {
    "c": "/",
    "python": "#\n",
    "hash": "#",
    "dash": "-/",
    "markup": "<",
}

_WORD = re.compile(r"\w+")
_WORD_BYTES = re.compile(rb"\w+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_ALPHA_BYTES = bytes(range(65, 91)) + bytes(range(97, 123))
_DIGIT_BYTES = b"0123456789"
_SPACE_BYTES = b" \t\n\r\x0b\x0c"
_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)


def _lang_key(lang: str) -> str:
    return lang.strip().lower()


class Document:
    """The text of one record and lazily computed analyses of it."""

    def __init__(self, text: str, lang: str = "", path: str = "", table: str = "others") -> None:
        self.text = text
        self.lang = lang
        self.path = path
        self.table = table
        self.family = COMMENT_FAMILY.get(_lang_key(lang), "none")

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
    def char_classes(self) -> tuple[int, int, int]:
        """(letters, digits, whitespace) over the whole text, with a bytes fast path."""
        text = self.text
        ascii_part = self.encoded if text.isascii() else text.encode("ascii", "ignore")
        n = len(ascii_part)
        alpha = n - len(ascii_part.translate(None, _ALPHA_BYTES))
        digit = n - len(ascii_part.translate(None, _DIGIT_BYTES))
        space = n - len(ascii_part.translate(None, _SPACE_BYTES))
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

    # ---- words --------------------------------------------------------------------------
    @cached_property
    def words(self) -> list[str] | list[bytes]:
        """Normalised words; ASCII texts are scanned as bytes (same words, 1.4x faster)."""
        if self.text.isascii():
            return _WORD_BYTES.findall(self.encoded.lower())
        return _WORD.findall(self.text.lower())

    @cached_property
    def word_lengths(self) -> npt.NDArray[np.int64]:
        return np.fromiter(map(len, self.words), dtype=np.int64, count=len(self.words))

    @cached_property
    def word_chars(self) -> int:
        return int(self.word_lengths.sum())

    @cached_property
    def word_ids(self) -> npt.NDArray[np.uint64]:
        """A 64-bit id per word (equal words, equal ids); only equality is ever used."""
        ids = np.fromiter(map(hash, self.words), dtype=np.int64, count=len(self.words))
        return ids.view(np.uint64)

    def ngram_hashes(self, n: int) -> npt.NDArray[np.uint64]:
        """One 64-bit hash per word n-gram (positions 0 .. len(words) - n)."""
        cache: dict[int, npt.NDArray[np.uint64]] = self.__dict__.setdefault("_ngrams", {})
        if n in cache:
            return cache[n]
        ids = self.word_ids
        count = len(ids) - n + 1
        if count <= 0:
            out = np.zeros(0, dtype=np.uint64)
        elif n == 1:
            out = ids
        else:
            prev = self.ngram_hashes(n - 1)
            with np.errstate(over="ignore"):
                out = prev[:count] * _HASH_MUL + ids[n - 1 :]
        cache[n] = out
        return out

    def ngram_runs(self, n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """(order, run starts): positions sorted by n-gram hash, and where each run of equal
        hashes starts in that order (with ``len(order)`` appended). One sort per n."""
        cache: dict[int, Any] = self.__dict__.setdefault("_ngram_runs", {})
        if n not in cache:
            hashes = self.ngram_hashes(n)
            order = np.argsort(hashes)
            ordered = hashes[order]
            change = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
            starts = np.concatenate(([0], change, [len(hashes)])) if len(hashes) else change
            cache[n] = (order, starts)
        result: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] = cache[n]
        return result

    def duplicated_ngrams(self, n: int) -> npt.NDArray[np.bool_]:
        """For each n-gram position: does the same n-gram occur elsewhere in the document?"""
        order, starts = self.ngram_runs(n)
        if len(order) == 0:
            return np.zeros(0, dtype=bool)
        counts = np.diff(starts)
        dup_sorted = np.repeat(counts > 1, counts)
        out = np.empty(len(order), dtype=bool)
        out[order] = dup_sorted
        return out

    # ---- comments and strings -----------------------------------------------------------
    @cached_property
    def _scan(self) -> tuple[str, list[str], list[str]]:
        """(code text, comment texts, string literals) from one pass of the family scanner.

        In the code text a comment is removed; a docstring leaves its line break. Code after a
        removed block comment joins the line before it: code lines are counted after removal.
        """
        scanner = _SCANNERS.get(self.family)
        if scanner is None:
            return self.text, [], []
        python = self.family == "python"
        parts = scanner.split("\n" + self.text if python else self.text)
        starts = _COMMENT_STARTS[self.family]
        comments: list[str] = []
        strings: list[str] = []
        for i in range(1, len(parts), 2):
            match = parts[i]
            if match[0] in starts:
                comments.append(match)
                parts[i] = "\n" if match[0] == "\n" else ""
            else:
                strings.append(match)
        code = "".join(parts)
        return (code[1:] if python else code), comments, strings

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
    def comment_chars(self) -> int:
        return sum(map(len, self._scan[1])) - sum(1 for c in self._scan[1] if c[0] == "\n")

    @cached_property
    def code_lines(self) -> list[str]:
        return [line for line in self.code_text.split("\n") if line.strip()]

    @cached_property
    def num_code_lines(self) -> int:
        return len(self.code_lines)

    @cached_property
    def code_chars(self) -> int:
        return len(self.code_text)

    def count_code_lines(self, pattern: re.Pattern[str]) -> int:
        """Code lines on which ``pattern`` (compiled with re.M, anchored by ^) matches."""
        return len(pattern.findall(self.code_text))
