"""HTML visible text equals OpenCoder's definition: BeautifulSoup ``get_text()`` over Python's
``html.parser`` (beautifulsoup4 is a dependency of the ``stream`` extra, so the reference runs
here), on markup written to hit each case and on the real HTML files Debian ships."""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals import SIGNALS

#: One case per rule of the definition.
CASES = {
    "comment splits text": "<p>one <!-- hidden --> two</p>",
    "script style template": (
        "<p>a</p><script>x()</script>\n<style>p{}</style>\n<template><p>t</p></template>b"
    ),
    "ruby annotations": "<ruby>漢<rt>kan</rt><rp>(</rp></ruby> text",
    "noscript is visible": "<noscript>enable scripts</noscript><p>x</p>",
    "whitespace nodes squeezed": "<div>\n    <p>a</p>\n    <p>  </p>\t<p> b </p>\n</div>",
    "pre keeps whitespace": "<pre>\n\n   <b>x</b>\n  </pre>\n<textarea>   </textarea>",
    "declarations outside html": (
        '<?xml version="1.0"?>\n<!DOCTYPE html>\n<html><body>x</body></html>\n'
    ),
    "processing instruction": "<p>a<?php echo 1 ?>b</p>",
    "entities": "<p>&amp; &lt;tag&gt; &#65;&#x42; caf&eacute;</p>",
    "script in pre": "<pre> a <script> s </script> b </pre>",
}


def reference(text: str) -> int:
    return len(BeautifulSoup(text, "html.parser").get_text())


def visible(text: str, path: str = "a.html") -> float:
    return SIGNALS["html_num_chars_visible"].fn(Document(text, "HTML", path))


@pytest.mark.parametrize("name", sorted(CASES))
def test_visible_chars_equal_beautifulsoup(name: str) -> None:
    """Each rule of the visible-text definition gives BeautifulSoup's count."""
    text = CASES[name]
    assert visible(text) == reference(text)


def test_share_is_visible_over_raw() -> None:
    """html_frac_chars_visible is the visible count over the raw character count."""
    text = CASES["whitespace nodes squeezed"]
    share = SIGNALS["html_frac_chars_visible"].fn(Document(text, "HTML", "a.html"))
    assert share == pytest.approx(reference(text) / len(text))


#: Real HTML that Debian packages install here (the golden set's own files among them).
REAL_DIRS = ("/usr/share/doc/libxslt1-dev", "/usr/share/doc/nodejs/api", "/usr/share/doc/valgrind")
#: lxml's tree and html.parser's differ in where whitespace-only nodes sit around end tags the
#: parser implies (a deviation row): the count may move by this share of the reference.
REAL_TOLERANCE = 0.005
#: Files over this size are left out: BeautifulSoup takes ~0.5 s a megabyte.
MAX_BYTES = 60_000


def test_real_files_within_tolerance() -> None:
    """On Debian's HTML documentation the count is BeautifulSoup's within 0.5%, most exactly."""
    files = sorted(
        p for d in REAL_DIRS for p in Path(d).rglob("*.html") if p.stat().st_size < MAX_BYTES
    )
    files = files[:: max(1, len(files) // 40)]
    if len(files) < 20:
        pytest.skip(f"only {len(files)} HTML files under {REAL_DIRS}")
    exact = 0
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        want, got = reference(text), visible(text, str(path))
        assert abs(got - want) <= REAL_TOLERANCE * max(want, 200), (path, want, got)
        exact += got == want
    assert exact >= 0.9 * len(files), f"{exact} of {len(files)} exact"


#: HTML comments as pygments' HTML lexer (what upstream removes comments with) splits a page:
#: (page, the comments upstream removes). Each expected list is what pygments 2.18 gives
#: (Comment.Multiline/Single tokens), checked by running it on these pages.
HTML_COMMENTS = {
    "style content is css, its <!-- --> is not a comment": (
        "<style>\n<!--\n/* css */\na { color: red; }\n-->\n</style>\n<p>x</p><!-- c -->\n",
        ["<!-- c -->"],
    ),
    "script content is javascript": (
        '<script>\n<!--\nvar u = "http://x"; // why\n/* b */ f();\n//-->\n</script>\n',
        ["// why", "/* b */", "//-->"],
    ),
    "a comment never closed is a declaration": ("<p>a <!-- never closed\n<b>bold</b>\n", []),
    "tags in any case, attributes": (
        '<SCRIPT type="text/javascript">x = 1; // one\n</SCRIPT >\n<!--z-->',
        ["// one", "<!--z-->"],
    ),
    "a comment inside a script does not hide the next one": (
        '<script>x = "<!--";</script><p>a</p><!-- c -->\n<![CDATA[ <!-- d --> ]]>',
        ["<!-- c -->"],
    ),
    "a script never closed holds the rest of its line": (
        "<script>f(); // open\n<!-- after -->\n",
        ["// open", "<!-- after -->"],
    ),
    "a script tag inside a comment": (
        "<!-- <script> // not js </script> -->\n<p>t</p>\n",
        ["<!-- <script> // not js </script> -->"],
    ),
}


@pytest.mark.parametrize("name", list(HTML_COMMENTS))
def test_html_comments_are_the_lexers(name: str) -> None:
    """Comments of an HTML page, and the code left without them, are what pygments' HTML lexer
    gives (was: every <!-- --> span, so a script or style wrapped in one was all comment)."""
    page, expected = HTML_COMMENTS[name]
    doc = Document(page, "HTML", "a.html")
    assert doc.comment_texts == expected
    assert doc.comment_chars == sum(map(len, expected))
    code = page
    for comment in expected:
        code = code.replace(comment, "", 1)
    assert doc.code_text == code


@pytest.mark.parametrize(
    ("open", "count", "ends"),
    [
        ("<!--", 50_000, "all"),  # one comment, closed by the last "-->"
        ("<script>", 50_000, "end"),  # the first script holds the rest of its line
        ("<!x", 50_000, "none"),  # a declaration up to the first ">"
        ("<?", 50_000, "end"),  # no "?>": text
        ("<![CDATA[", 30_000, "none"),  # no "]]>": a declaration up to the first ">"
    ],
)
def test_constructs_left_open_are_read_in_one_pass(open: str, count: int, ends: str) -> None:
    """Hostile pages (tens of thousands of constructs never closed, each of which sends a
    naive scanner to the end of the page) split as pygments' HTML lexer splits them (each
    expectation is its output on three of them)."""
    page = open * count + "\n<!-- end -->"
    want = {"all": [page], "end": ["<!-- end -->"], "none": []}[ends]
    assert Document(page, "HTML", "a.html").comment_texts == want
