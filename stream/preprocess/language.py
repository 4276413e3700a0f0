"""RefineCode preprocessing: language identification and low-capacity / bad-input drops.

Every record leaves with ``lang`` (Linguist's language name, e.g. ``Python``, ``C++``) and
``meta["lang_type"]`` (programming, markup, data or prose) and ``meta["lang_by"]`` (filename,
extension, shebang or given), or is dropped with one of these reasons:

========================  ===============================================================
``preprocess:empty``          nothing but whitespace
``preprocess:too_large``      more than ``max_bytes`` UTF-8 bytes (OpenCoder: 8 MB)
``preprocess:unknown_language``  no Linguist file name, extension or shebang matches
``preprocess:excluded_language`` a kind of file that is not code (csv, svg, notebooks, ...)
``preprocess:excluded_type``  Linguist type not in ``keep_types``
``preprocess:lock_file``      package-manager lock files (``yarn.lock``, ``poetry.lock``...)
``preprocess:minified``       minified bundles (by name, or by mean line length)
``preprocess:nul_bytes``      contains NUL: binary content that slipped through
``preprocess:invalid_utf8``   lone surrogates (undecodable bytes carried as escapes)
``preprocess:mixed_encoding`` U+FFFD replacement characters over ``max_replacement_frac``
``preprocess:tiny``           fewer than ``min_chars`` non-whitespace characters
``preprocess:long_line``      a line longer than ``max_line_chars`` (one-line multi-MB files)
========================  ===============================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar

from codekiln.stream.preprocess.languages import LanguageTable, default_table
from codekiln.stream.record import Record
from codekiln.stream.stage import FilterStage

from codekiln.checks import check_value

#: Linguist languages that are not source code worth training on (OpenCoder's exclusions, plus
#: other binary-like or machine-written data kinds of the same nature).
# fmt: off
EXCLUDED_LANGUAGES: frozenset[str] = frozenset({
    "CSV", "TSV", "SVG", "Jupyter Notebook", "Pickle", "Checksums", "Go Checksums", "G-code",
    "Gnuplot", "Public Key", "WebVTT", "SubRip Text", "X PixMap", "X BitMap", "Gerber Image",
    "Wavefront Object", "Wavefront Material", "STL", "Raw token data", "DirectX 3D File",
    "Adobe Font Metrics", "Unity3D Asset", "Git Revision List", "LTspice Symbol",
    "KiCad Layout", "KiCad Legacy Layout", "KiCad Schematic", "Roff Manpage", "E-mail",
    "Redirect Rules", "TSPLIB data", "Survex data", "Quartus Simulation IP",
})
# fmt: on

#: File names (matched on the base name) that are lock files, minified bundles or robots.txt.
EXCLUDED_NAME_PATTERNS: dict[str, str] = {
    "lock_file": (
        r"(?i)^(?:.*\.lock|package-lock\.json|npm-shrinkwrap\.json|pnpm-lock\.ya?ml|"
        r"go\.sum|go\.work\.sum|requirements\.lock\.txt|.*-lock\.(?:json|ya?ml))$"
    ),
    "minified": r"(?i)^.*[.-]min\.(?:js|mjs|cjs|css)$|^.*\.bundle\.js$|^.*\.map$",
    "excluded_language": r"(?i)^robots\.txt$",
}

#: Languages whose files are checked for minification by mean line length.
MINIFIABLE: frozenset[str] = frozenset({"JavaScript", "CSS", "TypeScript", "JSON", "HTML", "SCSS"})

ALL_TYPES = ("programming", "markup", "data", "prose")


class LanguageStage(FilterStage):
    """Language identification (Linguist's table) and low-capacity / bad-input drops."""

    name: ClassVar[str] = "preprocess"
    cpu_bound: ClassVar[bool] = True

    def __init__(
        self,
        *,
        keep_types: Iterable[str] = ALL_TYPES,
        exclude_languages: Iterable[str] = EXCLUDED_LANGUAGES,
        min_chars: int = 16,
        max_bytes: int = 8_000_000,
        max_line_chars: int = 100_000,
        minified_mean_line_chars: int = 300,
        max_replacement_frac: float = 0.01,
    ) -> None:
        self.keep_types = frozenset(keep_types)
        bad = self.keep_types - set(ALL_TYPES)
        if bad:
            raise ValueError(
                f"preprocess.keep_types: unknown type(s) {sorted(bad)}; known: {list(ALL_TYPES)}"
            )
        table = default_table()
        self.exclude_languages = frozenset(exclude_languages)
        unknown = sorted(n for n in self.exclude_languages if n not in table.languages)
        if unknown:
            raise ValueError(f"preprocess.exclude_languages: not Linguist languages: {unknown}")
        for field, value in (("min_chars", min_chars), ("max_bytes", max_bytes),
                             ("max_line_chars", max_line_chars),
                             ("minified_mean_line_chars", minified_mean_line_chars)):  # fmt: skip
            check_value(f"preprocess.{field}", value, ">= 0", ValueError, integer=True)
        check_value("preprocess.max_replacement_frac", max_replacement_frac, "[0, 1]", ValueError)
        self.min_chars = min_chars
        self.max_bytes = max_bytes
        self.max_line_chars = max_line_chars
        self.minified_mean_line_chars = minified_mean_line_chars
        self.max_replacement_frac = max_replacement_frac
        self._name_rules = [(rule, re.compile(p)) for rule, p in EXCLUDED_NAME_PATTERNS.items()]

    @classmethod
    def preload(cls) -> None:
        default_table()  # Linguist's table: ~10 ms to build

    @property
    def table(self) -> LanguageTable:
        return default_table()

    def filter(self, record: Record) -> str | None:
        text = record.text
        if not text or text.isspace():
            return "empty"
        # len(text) <= bytes <= 4 * len(text): encode only when the bound cannot decide.
        if len(text) > self.max_bytes or (
            4 * len(text) > self.max_bytes and _utf8_len(text) > self.max_bytes
        ):
            return "too_large"
        basename = record.path.replace("\\", "/").rsplit("/", 1)[-1]
        for rule, pattern in self._name_rules:
            if basename and pattern.match(basename):
                return rule
        detection = self.table.detect(record.path, text[:8192])
        if detection is None and record.lang:
            given = self.table.by_name(record.lang)
            if given is not None:
                record.lang = given.name
                record.meta["lang_type"] = given.type
                record.meta["lang_by"] = "given"
        elif detection is not None:
            record.lang = detection.language.name
            record.meta["lang_type"] = detection.language.type
            record.meta["lang_by"] = detection.by
        if "lang_by" not in record.meta:
            return "unknown_language"
        if record.lang in self.exclude_languages:
            return "excluded_language"
        if record.meta["lang_type"] not in self.keep_types:
            return "excluded_type"
        if "\x00" in text:
            return "nul_bytes"
        if _has_surrogates(text):
            return "invalid_utf8"
        replacements = text.count("\ufffd")
        if replacements and replacements > self.max_replacement_frac * len(text):
            return "mixed_encoding"
        if _non_whitespace_count(text, self.min_chars) < self.min_chars:
            return "tiny"
        newlines = text.count("\n")
        if len(text) > self.max_line_chars and _max_line_len(text) > self.max_line_chars:
            return "long_line"
        if (
            record.lang in MINIFIABLE
            and len(text) > 4 * self.minified_mean_line_chars
            and len(text) / (newlines + 1) > self.minified_mean_line_chars
        ):
            return "minified"
        return None


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _non_whitespace_count(text: str, enough: int) -> int:
    """Non-whitespace characters, counted only as far as ``enough`` needs (a prefix decides)."""
    probe = text[: 8 * enough + 64]
    count = len("".join(probe.split()))
    if count >= enough or len(probe) == len(text):
        return count
    return len("".join(text.split()))


def _max_line_len(text: str) -> int:
    return max(map(len, text.split("\n")))
