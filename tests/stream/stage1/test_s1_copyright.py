"""CopyrightStage: licence headers removed at the top only, in every comment syntax."""

from __future__ import annotations

import pytest
from codekiln.stream.transform import CopyrightStage, strip_licence_header, syntax_for
from hypothesis import given, settings
from hypothesis import strategies as st
from s1_helpers import make_record

APACHE = """Copyright 2020 Foo Inc.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND."""


def commented(prefix: str, text: str) -> str:
    return "".join(f"{prefix} {line}".rstrip() + "\n" for line in text.splitlines())


def run(lang: str, text: str) -> tuple[str, str | None, dict[str, object]]:
    record = make_record("f", text)
    record.lang = lang
    CopyrightStage().process([record])
    return record.text, record.drop_reason, record.meta


@pytest.mark.parametrize(
    ("lang", "header", "code"),
    [
        ("Python", commented("#", APACHE), "import os\n"),
        ("Go", commented("//", APACHE), "package main\n"),
        ("Java", "/*\n" + commented(" *", APACHE) + " */\n", "package x;\n"),
        ("C", "/* Copyright (c) 1999 Someone. All rights reserved. */\n", "int x;\n"),
        ("SQL", commented("--", APACHE), "SELECT 1;\n"),
        ("Haskell", "{- Copyright 2021 H. BSD License -}\n", "module Main where\n"),
        ("HTML", "<!--\n" + APACHE + "\n-->\n", "<html></html>\n"),
        ("Python", '"""\n' + APACHE + '\n"""\n', "import os\n"),
        ("Lua", commented("--", "SPDX-License-Identifier: MIT"), "local x = 1\n"),
        ("Common Lisp", commented(";;", "Copyright (C) 2001 L"), "(defun f () 1)\n"),
        (
            "Erlang",
            commented("%%", "Copyright Ericsson AB 2010. All Rights Reserved."),
            "-module(m).\n",
        ),
    ],
)
def test_removed_in_every_syntax(lang: str, header: str, code: str) -> None:
    """The licence header goes, the code stays, and meta says what went."""
    text, reason, meta = run(lang, header + "\n" + code)
    assert reason is None
    assert text == code
    assert meta["copyright_removed_lines"] == header.count("\n")
    assert "Copyright" in str(meta["copyright_removed"]) or "SPDX" in str(meta["copyright_removed"])


def test_shebang_and_encoding_kept() -> None:
    """Shebang and coding lines survive even when they touch the licence paragraph."""
    head = "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n"
    text, _, _ = run("Python", head + commented("#", APACHE) + "import os\n")
    assert text == head + "import os\n"


def test_go_build_constraint_kept() -> None:
    """Go build constraints in the header are directives, not licence: kept."""
    src = commented("//", "Copyright 2009 The Go Authors.") + "\n//go:build linux\n\npackage x\n"
    text, _, _ = run("Go", src)
    assert text == "//go:build linux\n\npackage x\n"


@pytest.mark.parametrize(
    ("lang", "src"),
    [
        # Leading comments that are not licence text.
        (
            "Python",
            "# Utilities for parsing config files.\n# Author notes: see docs.\n\nimport os\n",
        ),
        # Unlike RedPajama's routine, a licence-looking block after code is never cut.
        ("C", "#include <stdio.h>\n/* Copyright 2020 X. All rights reserved. */\nint x;\n"),
    ],
    ids=["non_licence_comments", "block_comment_after_code"],
)
def test_kept_verbatim(lang: str, src: str) -> None:
    """Comments that are not a leading licence stay as they are, and no removal is recorded."""
    text, _, meta = run(lang, src)
    assert text == src
    assert "copyright_removed" not in meta


def test_mixed_docstring_keeps_description() -> None:
    """A module docstring loses its licence paragraph and keeps its description."""
    src = (
        '"""Tools for frobbing.\n\nCopyright (c) 2020 Z.\nLicensed under the MIT license.\n\n'
        'More.\n"""\nx = 1\n'
    )
    text, _, _ = run("Python", src)
    assert "Tools for frobbing." in text
    assert "More." in text
    assert "Copyright" not in text


def test_orphaned_rulers_go_with_the_licence() -> None:
    """Ruler and empty comment lines left around a removed licence go too; framed text stays."""
    src = "# ------\n# Copyright X\n# ------\n\n#\n\n# Module does Y\nimport x\n"
    text, _, _ = run("Python", src)
    assert text == "# Module does Y\nimport x\n"


def test_only_licence_file_dropped() -> None:
    """A file that is nothing but a licence header is dropped with its reason."""
    _, reason, _ = run("Python", commented("#", APACHE))
    assert reason == "copyright:only_licence"


def test_prose_untouched() -> None:
    """Prose (a LICENSE file, a README) is never rewritten."""
    record = make_record("LICENSE", APACHE + "\n")
    record.lang, record.meta["lang_type"] = "Text", "prose"
    CopyrightStage().process([record])
    assert record.text == APACHE + "\n"


BODY = st.lists(
    st.sampled_from(["x = 1", "def f():", "    return 2", "print('hi')", "", "y = [1, 2]"]),
    min_size=1,
    max_size=8,
).map(lambda ls: "import os\n" + "\n".join(ls) + "\n")
HEADER = st.sampled_from(
    ["", commented("#", APACHE), "# plain note\n", '"""Doc.\n\nCopyright 2001 Q.\n"""\n']
)


@settings(max_examples=80, deadline=None)
@given(header=HEADER, body=BODY)
def test_code_after_header_never_changes(header: str, body: str) -> None:
    """Whatever the header, the code from the first statement on is unchanged; idempotent."""
    syntax = syntax_for("Python")
    assert syntax is not None
    once = strip_licence_header(header + body, syntax)
    assert once.text.endswith(body)
    assert strip_licence_header(once.text, syntax).text == once.text


#: Pieces of licence language, cut and in several cases, with separators between them.
_LICENCE_PIECES = [
    *("Copyright", "COPYRIGHT", "copy right", "(c) 2020", "(C) x", "(c)", "All Rights Reserved"),
    *("SPDX-License-Identifier", "Licensed under", "LICENCED to", "licensed", "GNU General"),
    *("Public License", "MIT License", "the software is provided", "Permission is hereby"),
    *("granted", "without warranty", "WITHOUT ANY WARRANTIES", "this file is free software"),
    *("under the terms of the", "Redistribution and use in source and binary forms"),
    *("is distributed in the hope that it will be useful", "\u017foftware", "\u00a9"),
    *(" ", "\n", "x"),
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_LICENCE_PIECES), max_size=8))
def test_strong_marker_shortcut_agrees_with_the_pattern(pieces: list[str]) -> None:
    """The word shortcut in front of the strong-marker pattern never changes its answer."""
    from codekiln.stream.transform.copyright import STRONG, is_strong

    text = "".join(pieces)
    assert is_strong(text) == bool(STRONG.search(text))
