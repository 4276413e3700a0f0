"""JavaScript parse failure: tree-sitter-javascript, a pinned grammar compiled to C.

A file is unparseable when the tree tree-sitter builds holds an ``ERROR`` node or a ``MISSING``
node (``root_node.has_error``). The grammar covers current ECMAScript and JSX (class fields and
private names, ``?.``, ``??`` and logical assignment, ``async``/``await`` including top-level
``await``, modules, BigInt, numeric separators, decorators, import attributes); TypeScript-only
syntax (type annotations, ``interface``, ``as``) is an error. The grammar and the runtime are
pinned exactly in the ``stream`` extra, so a verdict is a function of codekiln's pins, and the
reason names both (:data:`JS_PARSER`).

Known differences from a JavaScript engine, both rare in real code: the grammar has no rule
for automatic semicolon insertion after an arrow function whose block body is followed by a
line starting with ``[`` or ``(`` (node accepts it; 1 of 786 files of npm's own sources here),
and a raw NUL byte is an error even inside a string literal.

Bounds. The parse runs in C, where ``SIGALRM`` cannot interrupt it, so it is driven through a
read callback with a progress callback: tree-sitter calls back every few hundred bytes of
work, and the parse stops at the signal's deadline (the filter stage's ``signal_budget_s``,
read from the budget's deadline cell) or, when no deadline is armed (outside a process's main
thread), after :data:`JS_MAX_PARSE_S`.
The former is a :class:`SignalTimeout` (counted in ``signal_timeouts``), the latter
:class:`Unparseable`; both drop the file as ``filters:unparseable``. Files over
:data:`JS_MAX_PARSE_BYTES` are unparseable without a parse (memory: tree-sitter keeps the
whole tree, up to ~300 bytes per input byte on token-dense garbage).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from codekiln.stream.filters._budget import DEADLINE, SignalTimeout
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals._registry import Unparseable, signal

if TYPE_CHECKING:
    import tree_sitter

#: tree-sitter runtime and grammar versions, as pinned in the ``stream`` extra; every verdict
#: depends on both. Checked against the installed packages by the tests.
TREE_SITTER_VERSION = "0.26.1"
GRAMMAR_VERSION = "0.25.0"
JS_PARSER = f"tree-sitter-{TREE_SITTER_VERSION}/javascript-{GRAMMAR_VERSION}"
#: Larger files are unparseable without a parse (as Python's cap): above the size rule's default
#: (3 MB), so with the default tables it only changes the reason of a file dropped anyway.
JS_MAX_PARSE_BYTES = 4_000_000
#: Hang guard when no signal deadline is armed: valid code parses at ~10 MB/s (0.4 s for the
#: largest file parsed), the slowest garbage seen at ~0.25 MB/s (only over ~2.5 MB of such
#: garbage reaches this).
JS_MAX_PARSE_S = 10.0
#: Characters of the offending source quoted in the reason.
_QUOTE_CHARS = 40

_local = threading.local()


def _parser() -> tree_sitter.Parser:
    """One parser per thread (a tree-sitter parser is not safe to share between threads)."""
    parser: tree_sitter.Parser | None = getattr(_local, "parser", None)
    if parser is None:
        import tree_sitter
        import tree_sitter_javascript

        parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_javascript.language()))
        _local.parser = parser
    return parser


def _first_error(root: tree_sitter.Node) -> tree_sitter.Node:
    """The first ``ERROR`` or ``MISSING`` node in source order under ``root`` (which has one)."""
    cursor = root.walk()
    while True:
        node = cursor.node
        if node is None or node.is_error or node.is_missing:
            return node or root
        if not cursor.goto_first_child():
            return node
        # Move to the first child that holds an error; one always does when the parent has one,
        # except an ERROR parent, which returned above.
        while True:
            child = cursor.node
            if child is not None and (child.has_error or child.is_missing):
                break
            if not cursor.goto_next_sibling():
                return node


def _decode(data: bytes) -> str:
    # The bytes are the text encoded with surrogatepass: decoding so gives back its characters
    # (a cut through a character, possible at the quote's end, falls back to U+FFFD).
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def _describe(doc: Document, node: tree_sitter.Node) -> str:
    data = doc.encoded
    row, byte_column = node.start_point
    line_start = node.start_byte - byte_column
    column = len(_decode(data[line_start : node.start_byte])) + 1
    where = f"line {row + 1}, column {column}"
    if node.is_missing:
        return f"missing {node.type!r} at {where}"
    end = data.find(b"\n", node.start_byte, node.start_byte + 4 * _QUOTE_CHARS)
    quote = data[node.start_byte : end if end >= 0 else node.start_byte + 4 * _QUOTE_CHARS]
    text = _decode(quote)[:_QUOTE_CHARS]
    return f"syntax error at {where}: {text!r}" if text else f"syntax error at {where}"


@signal("js_unparseable")
def js_unparseable(doc: Document) -> float:
    """0 when tree-sitter-javascript parses the file (ECMAScript + JSX) with no ERROR or
    MISSING node; raises Unparseable (reason: the first error, line and column) when not."""
    data = doc.encoded
    if len(data) > JS_MAX_PARSE_BYTES:
        raise Unparseable(JS_PARSER, f"larger than {JS_MAX_PARSE_BYTES} bytes")
    clock = time.perf_counter
    view = memoryview(data)

    def read(offset: int, _point: object) -> memoryview:
        return view[offset:]

    parser = _parser()
    # A cancelled parse would otherwise resume on the next call.
    parser.reset()
    armed = DEADLINE[0]
    deadline = armed or clock() + JS_MAX_PARSE_S

    def progress(_offset: int, _has_error: bool) -> bool:
        return clock() > deadline  # True cancels the parse

    # The progress callback enforces the signal's deadline; the budget's alarm is held off
    # meanwhile, because an exception raised inside the read callback is not propagated by
    # the binding (it surfaces later as a SystemError).
    DEADLINE[0] = 0.0
    try:
        tree = parser.parse(read, progress_callback=progress)
    except ValueError as exc:  # the binding reports a cancelled parse as "Parsing failed"
        if armed:
            raise SignalTimeout from exc
        raise Unparseable(JS_PARSER, f"parse ran past {JS_MAX_PARSE_S:g}s") from exc
    finally:
        DEADLINE[0] = armed
        parser.reset()
    root = tree.root_node
    if not root.has_error:
        return 0.0
    raise Unparseable(JS_PARSER, _describe(doc, _first_error(root)))
