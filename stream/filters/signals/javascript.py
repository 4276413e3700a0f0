"""JavaScript parse failure and structure: tree-sitter-javascript, a pinned grammar in C.

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

from codekiln.stream.filters.budget import DEADLINE, SignalTimeout
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals.registry import (
    Unparseable,
    parse_signal,
    ratio,
    signal,
)

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


def _parse(doc: Document) -> tree_sitter.Tree:
    """The document's tree (parsed once, cached on the document); raises Unparseable or
    SignalTimeout as :func:`js_unparseable` documents."""
    cached: tree_sitter.Tree | Exception | None = doc.__dict__.get("_js_tree")
    if cached is None:
        try:
            cached = _parse_bounded(doc)
        except (Unparseable, SignalTimeout) as exc:
            cached = exc
        doc.__dict__["_js_tree"] = cached
    if isinstance(cached, Exception):
        raise cached
    return cached


def _parse_bounded(doc: Document) -> tree_sitter.Tree:
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
    if root.has_error:
        raise Unparseable(JS_PARSER, _describe(doc, _first_error(root)))
    return tree


js_unparseable = parse_signal(
    "js_unparseable",
    _parse,
    "0 when tree-sitter-javascript parses the file (ECMAScript + JSX) with no ERROR or\n"
    "MISSING node; raises Unparseable (reason: the first error, line and column) when not.",
)


# ---- OpenCoder's JavaScript structure signals, on the tree -------------------------------
#
# Upstream walks esprima's tree; the same nodes in tree-sitter's (esprima 4.0.1's node classes
# decide: an ``async function`` expression is not a FunctionExpression instance, an async
# declaration is a FunctionDeclaration, a regex is a Literal, parentheses leave no node):
#
# - functions: ``function f`` declarations (generators and async ones too); declarators whose
#   value is a (non-async) ``function`` or ``function*`` expression; ``module.exports.x = ``
#   a function or arrow function. Arrow functions held in variables and callbacks are not;
# - variables: declarators with a plain name whose value is not such a function expression
#   (``for (const x of xs)`` declares one), and ``module.exports.x = `` anything else;
# - simple variables: declarators (any name, destructuring too) without a value or with a
#   literal, identifier or unary value, and ``module.exports.x = `` one of those;
# - simple returns: ``return;`` or the return of a literal, identifier or unary expression;
# - imports: ``import`` declarations (``require()`` calls are not);
# - classes: named ``class`` declarations.

_QUERY_SOURCE = """
(function_declaration name: (identifier)) @function
(generator_function_declaration name: (identifier)) @function
(variable_declarator) @declarator
(for_in_statement left: (_) @for_left) @for_in
(assignment_expression
  left: (member_expression
    object: (member_expression
      object: (identifier) @module
      property: (property_identifier) @exports)
    property: (property_identifier))
  right: (_) @exported) @export_assignment
(return_statement) @return
(import_statement) @import
(class_declaration name: (identifier)) @class
"""
#: esprima's Literal (a regex literal included), Identifier and UnaryExpression.
_SIMPLE = frozenset(
    ["number", "string", "true", "false", "null", "regex", "identifier", "undefined",
     "unary_expression"]
)  # fmt: skip
_FUNCTION_EXPRESSIONS = frozenset(["function_expression", "generator_function"])
_DECLARATION_KINDS = frozenset(["var", "let", "const"])


class JsFacts:
    """Counts of upstream's JavaScript structure terms in one file."""

    __slots__ = ("classes", "functions", "imports", "simple_returns", "simple_variables",
                 "variables")  # fmt: skip

    def __init__(self) -> None:
        self.functions = self.variables = self.simple_variables = 0
        self.simple_returns = self.imports = self.classes = 0


def _query() -> tuple[tree_sitter.Query, type[tree_sitter.QueryCursor]]:
    cached: tuple[tree_sitter.Query, type[tree_sitter.QueryCursor]] | None = getattr(
        _local, "query", None
    )
    if cached is None:
        import tree_sitter
        import tree_sitter_javascript

        language = tree_sitter.Language(tree_sitter_javascript.language())
        cached = (tree_sitter.Query(language, _QUERY_SOURCE), tree_sitter.QueryCursor)
        _local.query = cached
    return cached


def _value(node: tree_sitter.Node | None) -> tree_sitter.Node | None:
    """The expression under any parentheses (esprima keeps no node for them)."""
    while node is not None and node.type == "parenthesized_expression":
        node = node.named_child(0)
    return node


def _is_function_expression(node: tree_sitter.Node | None) -> bool:
    """An esprima FunctionExpression instance: ``function``/``function*``, not async."""
    return (
        node is not None
        and node.type in _FUNCTION_EXPRESSIONS
        and not any(child.type == "async" for child in node.children[:1])
    )


def js_facts(doc: Document) -> JsFacts:
    """Upstream's structure terms of the document's tree (cached on the document)."""
    cached: JsFacts | None = doc.__dict__.get("_js_facts")
    if cached is not None:
        return cached
    tree = _parse(doc)
    query, cursor_type = _query()
    captures: dict[str, list[tree_sitter.Node]] = {}
    assignments: list[dict[str, list[tree_sitter.Node]]] = []
    for _, match in cursor_type(query).matches(tree.root_node):
        if "export_assignment" in match:
            assignments.append(match)
        else:
            for name, nodes in match.items():
                captures.setdefault(name, []).extend(nodes)
    facts = JsFacts()
    facts.functions = len(captures.get("function", ()))
    facts.imports = len(captures.get("import", ()))
    facts.classes = len(captures.get("class", ()))
    for node in captures.get("declarator", ()):
        declared = node.child_by_field_name("name")
        value = _value(node.child_by_field_name("value"))
        if _is_function_expression(value):
            if declared is not None and declared.type == "identifier":
                facts.functions += 1
            continue
        if declared is not None and declared.type == "identifier":
            facts.variables += 1
        if value is None or value.type in _SIMPLE:
            facts.simple_variables += 1
    for node in captures.get("for_in", ()):
        # ``for (const x of xs)``: a declaration without a value (no declarator node here).
        if any(child.type in _DECLARATION_KINDS for child in node.children[:3]):
            left = node.child_by_field_name("left")
            facts.variables += left is not None and left.type == "identifier"
            facts.simple_variables += 1
    for match in assignments:
        (module,), (exports_node,) = match["module"], match["exports"]
        # (node.text is unavailable: the tree was parsed from a read callback, not bytes)
        data = doc.encoded
        if (
            data[module.start_byte : module.end_byte] != b"module"
            or data[exports_node.start_byte : exports_node.end_byte] != b"exports"
        ):
            continue
        value = _value(match["exported"][0])
        kind = value.type if value is not None else ""
        if kind in ("function_expression", "generator_function", "arrow_function"):
            facts.functions += 1
        else:
            facts.variables += 1
            facts.simple_variables += kind in _SIMPLE
    for node in captures.get("return", ()):
        arguments = [child for child in node.named_children if child.type != "comment"]
        argument = _value(arguments[0]) if arguments else None
        if argument is None or argument.type in _SIMPLE:
            facts.simple_returns += 1
    doc.__dict__["_js_facts"] = facts
    return facts


@signal("js_frac_lines_func")
def js_frac_lines_func(doc: Document) -> float:
    """Function definitions (upstream's: declarations, function expressions held in variables,
    exported functions; not arrow callbacks) over code lines."""
    return ratio(js_facts(doc).functions, doc.num_code_lines)


@signal("js_cate_no_var")
def js_cate_no_var(doc: Document) -> float:
    """1 when the file declares no variable (declarators with a plain name not holding a
    function expression, ``module.exports.x`` values)."""
    return 0.0 if js_facts(doc).variables else 1.0


@signal("js_score_no_logic")
def js_score_no_logic(doc: Document) -> float:
    """(functions + imports + simple variables + simple returns + classes) / code lines."""
    facts = js_facts(doc)
    terms = (
        facts.functions
        + facts.imports
        + facts.simple_variables
        + facts.simple_returns
        + facts.classes
    )
    return ratio(terms, doc.num_code_lines)
