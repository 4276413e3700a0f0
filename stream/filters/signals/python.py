"""Python signals, from the abstract syntax tree of the running interpreter.

Parsing uses :func:`ast.parse` of the interpreter codekiln runs on (3.11 or later), with
``feature_version`` left at that interpreter's grammar: a file using syntax newer than it (for
example PEP 695 ``type`` statements on 3.11) is unparseable there. This makes parse results a
function of the interpreter minor version, which the run report records; Python 2 files are
unparseable on every supported interpreter, as upstream intends.

Parse failures of every kind (``SyntaxError``, ``ValueError`` for NUL bytes, ``RecursionError``
and ``MemoryError`` for deeply nested input) become :class:`Unparseable`, never a crash.
Line-pattern signals (``pass``/``import``/``print`` lines) match whole statements, so
``password = 1`` is not a ``pass`` line and ``reprint(x)`` is not a ``print`` line.
"""

from __future__ import annotations

import ast
import gc
import re
import sys
import warnings
from typing import Any

from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals._registry import Unparseable, ratio, signal

PARSER = f"python{sys.version_info.major}.{sys.version_info.minor}-ast"
#: Files larger than this are not parsed (a parse of a multi-MB file may take seconds): the
#: parse-failure rule reports them unparseable. Above the size rule's default, so it never
#: decides alone with the default tables.
MAX_PARSE_BYTES = 4_000_000

_FUNC = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class _Facts:
    """What one statement-level walk of the tree finds."""

    __slots__ = ("bare_returns", "class_assigns", "classes", "functions", "has_variable",
                 "single_return_functions")  # fmt: skip

    def __init__(self) -> None:
        self.functions = 0
        self.classes = 0
        self.single_return_functions = 0
        self.bare_returns = 0
        self.class_assigns = 0
        self.has_variable = False


def _is_trivial_value(node: ast.expr | None) -> bool:
    return node is None or isinstance(node, ast.Constant | ast.Name | ast.Attribute)


def _walk(tree: ast.Module) -> _Facts:
    facts = _Facts()
    # (statement, inside a class body directly)
    stack: list[tuple[ast.stmt, bool]] = [(stmt, False) for stmt in tree.body]
    while stack:
        node, in_class = stack.pop()
        kind = type(node)
        if kind in _FUNC:
            func: Any = node
            facts.functions += 1
            args = func.args
            if args.args or args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg:
                facts.has_variable = True
            body = func.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]  # a docstring does not make a body logic
            if len(body) == 1 and isinstance(body[0], ast.Return):
                facts.single_return_functions += 1
            stack.extend((child, False) for child in func.body)
            continue
        if kind is ast.ClassDef:
            facts.classes += 1
            stack.extend((child, True) for child in node.body)  # type: ignore[attr-defined]
            continue
        if kind in (ast.Assign, ast.AugAssign, ast.AnnAssign):
            facts.has_variable = True
            if in_class:
                facts.class_assigns += 1
        elif kind in (ast.For, ast.AsyncFor):
            facts.has_variable = True
        elif kind in (ast.With, ast.AsyncWith):
            if any(item.optional_vars is not None for item in node.items):  # type: ignore[attr-defined]
                facts.has_variable = True
        elif kind is ast.Return:
            if _is_trivial_value(node.value):  # type: ignore[attr-defined]
                facts.bare_returns += 1
        elif kind is ast.Try or kind.__name__ == "TryStar":
            for handler in node.handlers:  # type: ignore[attr-defined]
                if handler.name:
                    facts.has_variable = True
                stack.extend((child, False) for child in handler.body)
        elif kind is ast.Match:
            for case in node.cases:  # type: ignore[attr-defined]
                stack.extend((child, False) for child in case.body)
        for field in ("body", "orelse", "finalbody"):
            children = getattr(node, field, None)
            if children:
                stack.extend((child, False) for child in children)
    if not facts.has_variable:
        # Rare: look into expressions for walrus targets, comprehension and lambda variables.
        for sub in ast.walk(tree):
            if isinstance(sub, ast.NamedExpr | ast.comprehension) or (
                isinstance(sub, ast.Lambda) and sub.args.args
            ):
                facts.has_variable = True
                break
    return facts


def _facts(doc: Document) -> _Facts:
    cached: _Facts | Unparseable | None = doc.__dict__.get("_python_facts")
    if cached is None:
        cached = _parse(doc)
        doc.__dict__["_python_facts"] = cached
    if isinstance(cached, Unparseable):
        raise cached
    return cached


def _parse(doc: Document) -> _Facts | Unparseable:
    if len(doc.encoded) > MAX_PARSE_BYTES:
        return Unparseable(PARSER, f"larger than {MAX_PARSE_BYTES} bytes")
    # The tree is garbage the moment the walk ends, yet building it triggers cyclic-GC passes
    # over every node made so far: pausing the collector makes parsing ~15% cheaper.
    paused = gc.isenabled()
    gc.disable()
    try:
        with warnings.catch_warnings():
            # Invalid escapes and the like warn at parse time; they are not parse failures.
            warnings.simplefilter("ignore")
            # A UTF-8 byte-order mark is valid at the start of a source file; decoded text
            # keeps it as U+FEFF, which ast.parse of a str rejects.
            tree = ast.parse(doc.text.removeprefix("\ufeff"))
        return _walk(tree)
    except SyntaxError as exc:
        return Unparseable(PARSER, f"{type(exc).__name__}: {exc.msg} (line {exc.lineno})")
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return Unparseable(PARSER, f"{type(exc).__name__}: {str(exc)[:200]}")
    finally:
        if paused:
            gc.enable()


@signal("py_unparseable")
def py_unparseable(doc: Document) -> float:
    """0 when the file parses; raises Unparseable (reason ``unparseable``) when it does not."""
    _facts(doc)
    return 0.0


@signal("py_frac_lines_func")
def py_frac_lines_func(doc: Document) -> float:
    """Function definitions over code lines."""
    return ratio(_facts(doc).functions, doc.num_code_lines)


@signal("py_cate_no_var")
def py_cate_no_var(doc: Document) -> float:
    """1 when the file has no variable at all (assignment, loop/with target, argument)."""
    return 0.0 if _facts(doc).has_variable else 1.0


@signal("py_frac_lines_single_return_func")
def py_frac_lines_single_return_func(doc: Document) -> float:
    """Functions whose body (docstring aside) is a single return, over code lines."""
    return ratio(_facts(doc).single_return_functions, doc.num_code_lines)


_IMPORT = re.compile(r"^[ \t]*(?:import[ \t]+\w|from[ \t]+[\w.]+[ \t]+import\b)", re.M)
_PASS = re.compile(r"^[ \t]*pass[ \t]*(?:;[ \t]*)?$", re.M)
_PRINT = re.compile(r"^[ \t]*print[ \t]*\(", re.M)


@signal("py_frac_lines_import")
def py_frac_lines_import(doc: Document) -> float:
    """``import`` / ``from ... import`` statement lines over code lines."""
    return ratio(doc.count_code_lines(_IMPORT), doc.num_code_lines)


@signal("py_frac_lines_pass")
def py_frac_lines_pass(doc: Document) -> float:
    """Lines that are a bare ``pass`` statement over code lines."""
    return ratio(doc.count_code_lines(_PASS), doc.num_code_lines)


@signal("py_frac_lines_print")
def py_frac_lines_print(doc: Document) -> float:
    """Lines that start with a ``print(`` call over code lines."""
    return ratio(doc.count_code_lines(_PRINT), doc.num_code_lines)


@signal("py_score_no_logic")
def py_score_no_logic(doc: Document) -> float:
    """(functions + import lines + classes + trivial returns + class-level assignments) / lines."""
    facts = _facts(doc)
    structure = (
        facts.functions
        + doc.count_code_lines(_IMPORT)
        + facts.classes
        + facts.bare_returns
        + facts.class_assigns
    )
    return min(1.0, ratio(structure, doc.num_code_lines))
