"""GitHub Linguist's language table, and language identification from a path (and a shebang).

The table is ``linguist_languages.json`` beside this module: Linguist's ``languages.yml``
(type, extensions, file names, interpreters, aliases, group of every language) as shipped by the
npm package ``linguist-languages`` (MIT; see ``LICENSE-linguist-languages`` and
``LINGUIST_SOURCE.md``). Nothing here is a hand-typed language list except the two documented
tie-break tables below, which only decide between languages that Linguist itself lists for the
same extension.

Identification order (first hit wins):

1. the exact file name (``Makefile``, ``Dockerfile``, ``yarn.lock``), then its lower-case form;
2. the longest matching extension (``.d.ts`` before ``.ts``), case-insensitive;
3. the interpreter of a ``#!`` line (``#!/usr/bin/env python3`` gives Python).

Where Linguist lists several languages for one extension (``.h``: C, C++, Objective-C), a few
content hints decide (:data:`CONTENT_HINTS`), else the first language of :data:`PREFERRED`
among the candidates, else the language whose primary (first) extension it is, else the
candidate of type programming, else the alphabetically first: always the same answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

TABLE_FILE = "linguist_languages.json"

#: Tie-break between languages Linguist lists for the same extension: the commoner reading of a
#: file in an open-source code corpus comes first.
# fmt: off
PREFERRED: tuple[str, ...] = (
    "Python", "JavaScript", "TypeScript", "Java", "C", "C++", "C#", "Go", "Rust", "PHP", "Ruby",
    "Shell", "SQL", "HTML", "CSS", "Markdown", "JSON", "YAML", "TOML", "XML", "Text",
    "Objective-C", "Perl", "Scala", "Kotlin", "Swift", "Lua", "R", "MATLAB", "Haskell", "OCaml",
    "Fortran", "Assembly", "Verilog", "Common Lisp", "Scheme", "Erlang", "F#", "Pascal",
    "Visual Basic 6.0", "Roff", "PLSQL", "TeX", "AsciiDoc", "Pod", "INI", "GLSL", "Lex", "Yacc",
    "Makefile", "M4", "Prolog", "Smalltalk", "ActionScript", "Modula-2", "D", "Rebol",
)
# fmt: on

#: Content hints for ambiguous extensions: (extension, regex over the first 8 KiB, language).
CONTENT_HINTS: tuple[tuple[str, str, str], ...] = (
    (".h", r"^\s*(?:class\s+\w+\s*[:{]|namespace\s|template\s*<)|std::", "C++"),
    (".h", r"#include\s*<(?:iostream|vector|string|memory|map|algorithm)>", "C++"),
    (".h", r"^\s*@(?:interface|implementation|protocol|end)\b|#import\s", "Objective-C"),
    (".m", r"^\s*@(?:interface|implementation|protocol|end)\b|#import\s|#include\s", "Objective-C"),
    (".m", r"^\s*(?:function\s|%|end\s*$)", "MATLAB"),
    (".pl", r"^\s*:-\s|^\w+\([^)]*\)\s*:-", "Prolog"),
    (".asc", r"-----BEGIN PGP", "Public Key"),
    (".inc", r"<\?php", "PHP"),
    (".pkl", r"\A(?:\x80|\((?:dp|lp|tp)?\d*\n|c[\w.]+\n)", "Pickle"),
    (".ts", r"^\s*<\?xml|<TS\b", "XML"),
    (".md", r"^\s*\(define_(?:insn|expand|peephole)", "GCC Machine Description"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Language:
    name: str
    #: Linguist's type: programming, markup, data or prose.
    type: str
    group: str = ""


@dataclass(frozen=True, slots=True)
class Detection:
    language: Language
    #: What decided it: filename, extension, shebang or given (the record already named it).
    by: str


class LanguageTable:
    """Lookups over Linguist's table. Build once (:func:`default_table`) and share."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.source: str = str(data.get("source", ""))
        langs: dict[str, dict[str, Any]] = data["languages"]
        self.languages: dict[str, Language] = {
            name: Language(name, str(v["type"]), str(v.get("group", "")))
            for name, v in langs.items()
        }
        self._by_lower_name: dict[str, Language] = {}
        for name, v in langs.items():
            lang = self.languages[name]
            for alias in [name, *v.get("aliases", [])]:
                self._by_lower_name.setdefault(alias.lower(), lang)
        self._filenames: dict[str, Language] = {}
        self._filenames_lower: dict[str, Language] = {}
        ext_candidates: dict[str, list[tuple[str, bool]]] = {}
        interp: dict[str, list[str]] = {}
        for name in sorted(langs):
            v = langs[name]
            for fname in v.get("filenames", []):
                self._filenames.setdefault(fname, self.languages[name])
                self._filenames_lower.setdefault(fname.lower(), self.languages[name])
            for i, ext in enumerate(v.get("extensions", [])):
                ext_candidates.setdefault(ext.lower(), []).append((name, i == 0))
            for it in v.get("interpreters", []):
                interp.setdefault(it, []).append(name)
        rank = {name: i for i, name in enumerate(PREFERRED)}
        self._ext_default: dict[str, Language] = {}
        self._ext_ambiguous: dict[str, tuple[str, ...]] = {}
        for ext, cands in ext_candidates.items():
            names = [n for n, _ in cands]
            primary = {n for n, p in cands if p}

            def order(n: str, primary: set[str] = primary) -> tuple[int, int, int, str]:
                t = self.languages[n].type
                return (rank.get(n, len(rank)), n not in primary, t != "programming", n)

            best = min(names, key=order)
            self._ext_default[ext] = self.languages[best]
            if len(names) > 1:
                self._ext_ambiguous[ext] = tuple(sorted(names))
        self._max_ext_dots = max(ext.count(".") for ext in self._ext_default)
        self._interpreters = {
            it: self.languages[min(names, key=lambda n: (rank.get(n, len(rank)), n))]
            for it, names in interp.items()
        }
        self._hints: dict[str, list[tuple[re.Pattern[str], str]]] = {}
        for ext, pattern, name in CONTENT_HINTS:
            if name in self.languages and name in self._ext_ambiguous.get(ext, ()):
                self._hints.setdefault(ext, []).append((re.compile(pattern, re.MULTILINE), name))

    def by_name(self, name: str) -> Language | None:
        """A language by its Linguist name or alias, case-insensitive (``py`` gives Python)."""
        return self._by_lower_name.get(name.strip().lower())

    def extension_of(self, basename: str) -> str | None:
        """The longest suffix of ``basename`` that Linguist knows, lower-cased, or None."""
        lower = basename.lower()
        start = 1 if lower.startswith(".") else 0  # ".bashrc" is a name, not an extension
        idx = lower.find(".", start)
        while idx != -1:
            ext = lower[idx:]
            if ext.count(".") <= self._max_ext_dots and ext in self._ext_default:
                return ext
            idx = lower.find(".", idx + 1)
        return None

    def detect(self, path: str, head: str = "") -> Detection | None:
        """The language of a file from its path, then the shebang in ``head``; None if unknown."""
        basename = path.replace("\\", "/").rsplit("/", 1)[-1]
        if basename:
            lang = self._filenames.get(basename) or self._filenames_lower.get(basename.lower())
            if lang is not None:
                return Detection(lang, "filename")
            ext = self.extension_of(basename)
            if ext is not None:
                return Detection(self._resolve_ext(ext, head), "extension")
        lang = self.by_shebang(head)
        if lang is not None:
            return Detection(lang, "shebang")
        return None

    def by_shebang(self, head: str) -> Language | None:
        if not head.startswith("#!"):
            return None
        line = head[2:].split("\n", 1)[0].strip()
        parts = line.split()
        if not parts:
            return None
        prog = parts[0].rsplit("/", 1)[-1]
        if prog == "env":
            args = [p for p in parts[1:] if not p.startswith("-") and "=" not in p]
            if not args:
                return None
            prog = args[0].rsplit("/", 1)[-1]
        lang = self._interpreters.get(prog)
        if lang is None:  # python3.11 -> python3 -> python
            stripped = prog.rstrip("0123456789.")
            lang = self._interpreters.get(stripped) or self._interpreters.get(
                re.sub(r"[\d.]+$", "", stripped)
            )
        return lang

    def _resolve_ext(self, ext: str, head: str) -> Language:
        hints = self._hints.get(ext)
        if hints:
            window = head[:8192]
            for pattern, name in hints:
                if pattern.search(window):
                    return self.languages[name]
        return self._ext_default[ext]


@lru_cache(maxsize=1)
def default_table() -> LanguageTable:
    """The shipped Linguist table (loaded once per process)."""
    raw = (
        resources.files(__name__.rpartition(".")[0])
        .joinpath(TABLE_FILE)
        .read_text(encoding="utf-8")
    )
    return LanguageTable(json.loads(raw))
