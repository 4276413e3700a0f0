"""HTML signals: parse failure, visible-text share and visible-text size (lxml).

Visible text follows OpenCoder's definition, BeautifulSoup's ``get_text()`` on a tree built by
Python's ``html.parser``: every text node in document order, except the content of ``script``,
``style``, ``template``, ``rt`` and ``rp`` elements, comments, processing instructions and the
doctype; a text node of ASCII whitespace only (outside ``pre`` and ``textarea``) counts as one
character (``\\n`` when it holds a line break, else a space), other text is kept as it is. The
tree is lxml's (about 20x faster than BeautifulSoup's); the two trees differ only in where
whitespace-only text nodes sit around end tags the parser implies, which moves the count by
well under 1% (a row of the deviation table). lxml's HTML parser recovers from almost any
markup, so "unparseable" means lxml produced no tree at all (empty or markup-free input) or
raised.
"""

from __future__ import annotations

import re

import lxml.etree
import lxml.html
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals.registry import (
    Unparseable,
    parse_signal,
    ratio,
    signal,
)

HTML_PARSER = "lxml.html"
#: Elements whose text is not visible (BeautifulSoup's string containers other than text).
_INVISIBLE = frozenset(("script", "style", "template", "rt", "rp"))
#: Elements whose whitespace-only text is kept as it is.
_PRESERVE = frozenset(("pre", "textarea"))
#: BeautifulSoup's whitespace: ASCII space, tab, line feed, form feed, carriage return.
_SPACES = " \t\n\f\r"
_BLANK = re.compile(f"[{_SPACES}]*")
#: Markup outside the root element: the XML declaration, doctype, comments.
_OUTER_MARKUP = re.compile(r"<[!?][^<>]*>")  # no "<" inside: linear on "<!<!<!..."
_HTML_OPEN = re.compile(r"<html[\s>]", re.I)
_HTML_CLOSE = "</html>"


def _tree(doc: Document) -> lxml.html.HtmlElement:
    """The document's lxml tree, parsed once (the parse rule runs first; the visible text is
    counted only when a rule reads it)."""
    cached: lxml.html.HtmlElement | Unparseable | None = doc.__dict__.get("_html_tree")
    if cached is None:
        cached = _parse(doc.text)
        doc.__dict__["_html_tree"] = cached
    if isinstance(cached, Unparseable):
        raise cached
    return cached


html_unparseable = parse_signal(
    "html_unparseable",
    _tree,
    "0 when lxml builds a tree; raises Unparseable (reason ``unparseable``) when not.",
)


def _visible_chars(doc: Document) -> int:
    cached: int | None = doc.__dict__.get("_visible_chars")
    if cached is None:
        cached = _count(_tree(doc)) + _outer(doc.text)
        doc.__dict__["_visible_chars"] = cached
    return cached


def _squeezed_len(text: str) -> int:
    """Length of a text node as BeautifulSoup stores it (whitespace only: one character)."""
    return len(text) if text.strip(_SPACES) else min(len(text), 1)


def _squeezed_total(nodes: list[str]) -> int:
    """Sum of :func:`_squeezed_len` over ``nodes`` (one call per document, not per node)."""
    blank = [node for node in nodes if node and not node.strip(_SPACES)]
    return sum(map(len, nodes)) - sum(map(len, blank)) + len(blank)


def _unsqueezed(top: lxml.html.HtmlElement) -> int:
    """Characters that squeezing took from the visible text nodes under ``top`` (tail
    excluded): what to add back inside ``<pre>``."""
    extra = 0
    stack = [top]
    while stack:
        el = stack.pop()
        if el is not top and el.tail:
            extra += len(el.tail) - _squeezed_len(el.tail)
        if isinstance(el.tag, str) and el.tag not in _INVISIBLE:
            if el.text:
                extra += len(el.text) - _squeezed_len(el.text)
            stack.extend(el)
    return extra


def _outer(text: str) -> int:
    """Characters of the whitespace text nodes lxml drops outside ``<html>...</html>``: each
    whitespace run between the declarations before it, and the run after it, is one node."""
    count = 0
    start = _HTML_OPEN.search(text)
    if start is not None:
        for piece in _OUTER_MARKUP.split(text[: start.start()]):
            if piece and _BLANK.fullmatch(piece):
                count += 1
    end = text.rfind(_HTML_CLOSE)
    if end >= 0:
        tail = text[end + len(_HTML_CLOSE) :]
        if tail and _BLANK.fullmatch(tail):
            count += 1
    return count


def _parse(text: str) -> lxml.html.HtmlElement | Unparseable:
    if not text.strip():
        return Unparseable(HTML_PARSER, "empty document")
    try:
        # Bytes input lets lxml accept documents with an XML encoding declaration; the bytes
        # are UTF-8 whatever the document declares (without the parser's encoding, a page
        # with no charset declaration was read as Latin-1: three characters per CJK one).
        root = lxml.html.document_fromstring(
            text.encode("utf-8", "surrogatepass"), parser=lxml.html.HTMLParser(encoding="utf-8")
        )
    except (lxml.etree.ParserError, ValueError, lxml.etree.XMLSyntaxError) as exc:
        return Unparseable(HTML_PARSER, f"{type(exc).__name__}: {str(exc)[:200]}")
    return root


def _count(root: lxml.html.HtmlElement) -> int:
    total = _squeezed_total(list(root.itertext()))
    # Less the text of invisible elements (their tails are visible), outermost ones only.
    for hidden in root.iter(*_INVISIBLE):
        if not any(up.tag in _INVISIBLE for up in hidden.iterancestors()):
            total -= _squeezed_total(list(hidden.itertext(with_tail=False)))
    # Whitespace-only text inside <pre>/<textarea> counts as it is, not squeezed.
    for kept in root.iter(*_PRESERVE):
        if not any(up.tag in _PRESERVE or up.tag in _INVISIBLE for up in kept.iterancestors()):
            total += _unsqueezed(kept)
    return total


@signal("html_frac_chars_visible")
def html_frac_chars_visible(doc: Document) -> float:
    """Visible text characters over raw characters."""
    return ratio(_visible_chars(doc), len(doc.text))


@signal("html_num_chars_visible")
def html_num_chars_visible(doc: Document) -> float:
    """Visible text characters."""
    return float(_visible_chars(doc))
