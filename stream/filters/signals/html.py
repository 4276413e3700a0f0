"""HTML signals: parse failure, visible-text share and visible-text size (lxml).

Visible text is the text content of the parsed tree once ``script``, ``style``, ``noscript``
and ``template`` elements and comments are removed, with whitespace runs collapsed. lxml's
HTML parser recovers from almost any markup, so "unparseable" means lxml produced no tree at
all (empty or markup-free input) or raised.
"""

from __future__ import annotations

import re

from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals._registry import Unparseable, ratio, signal

HTML_PARSER = "lxml.html"
_SPACE = re.compile(r"\s+")
_INVISIBLE = ("script", "style", "noscript", "template")


def _visible_text(doc: Document) -> str:
    cached: str | Unparseable | None = doc.__dict__.get("_visible_text")
    if cached is None:
        cached = _extract(doc.text)
        doc.__dict__["_visible_text"] = cached
    if isinstance(cached, Unparseable):
        raise cached
    return cached


def _extract(text: str) -> str | Unparseable:
    import lxml.etree
    import lxml.html

    if not text.strip():
        return Unparseable(HTML_PARSER, "empty document")
    try:
        # Bytes input lets lxml accept documents with an XML encoding declaration.
        root = lxml.html.document_fromstring(text.encode("utf-8", "surrogatepass"))
    except (lxml.etree.ParserError, ValueError, lxml.etree.XMLSyntaxError) as exc:
        return Unparseable(HTML_PARSER, f"{type(exc).__name__}: {str(exc)[:200]}")
    lxml.etree.strip_elements(root, *_INVISIBLE, lxml.etree.Comment, with_tail=False)
    return _SPACE.sub(" ", root.text_content()).strip()


@signal("html_unparseable")
def html_unparseable(doc: Document) -> float:
    """0 when lxml builds a tree; raises Unparseable (reason ``unparseable``) when not."""
    _visible_text(doc)
    return 0.0


@signal("html_frac_chars_visible")
def html_frac_chars_visible(doc: Document) -> float:
    """Visible text characters over raw characters."""
    return ratio(len(_visible_text(doc)), len(doc.text))


@signal("html_num_chars_visible")
def html_num_chars_visible(doc: Document) -> float:
    """Visible text characters."""
    return float(len(_visible_text(doc)))
