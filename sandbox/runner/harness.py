"""The Python test harness, run inside the job's own process (forked from the supervisor).

Runs inside the sandbox image on the image's python3 (stdlib only). It executes ``code`` as
``__main__``, then ``tests`` in the same namespace, and writes ONE result record to the record
pipe after every test ran. The record carries a nonce that the supervisor handed over a pipe the
harness read and closed before any job code ran; the supervisor rejects a record without it, so
``exit(0)``, ``os._exit(0)``, ``sys.exit(0)`` or killing the process before the end yields no
valid record and the run fails. (A job that deliberately walks the harness's stack frames could
find the nonce: see THREAT_MODEL.md.)

Test semantics (docs/sandbox.md): every top-level ``def test_*()`` is one test; without any,
every top-level ``assert`` is one test; without either, the whole ``tests`` block is one test.
Every ``assert A == B`` in ``tests`` is rewritten to a strict comparison (``strict_eq``) so that
an object whose ``__eq__`` always answers True does not pass.
"""

from __future__ import annotations

import ast
import atexit
import builtins
import collections
import contextlib
import decimal
import io
import json
import os
import sys
import traceback
from typing import Any

_ATOMS: frozenset[type] = frozenset(
    {int, float, bool, complex, str, bytes, type(None), decimal.Decimal}
)
_SEQS: frozenset[type] = frozenset({list, tuple, collections.deque})
_MAPS: frozenset[type] = frozenset(
    {dict, collections.OrderedDict, collections.defaultdict, collections.Counter}
)
_SETS: frozenset[type] = frozenset({set, frozenset})
_NUMBERS: frozenset[type] = frozenset({int, float, bool, complex})
_EQ_NAME = "__codekiln_strict_eq__"
_MAX_MESSAGE = 2000


def _numpy_scalar_types() -> frozenset[type]:
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return frozenset()
    try:
        return frozenset(t for t in numpy.sctypeDict.values() if isinstance(t, type))
    except AttributeError:
        return frozenset()


# __eq__ implementations that cannot lie: identity (object's: plain Enum members, plain
# objects) and the value comparisons of built-in scalar types (their subclasses inherit them
# unless they override __eq__, which then is not in this set).
_TRUSTED_EQ: frozenset[Any] = frozenset(
    t.__eq__ for t in (object, int, float, complex, str, bytes, decimal.Decimal)
)


def _trusted_key(x: Any, _depth: int = 0) -> bool:
    """Whether ``x`` is a set element or dict key whose equality only built-in code decides.

    Tuples and frozensets (their subclasses too, when they keep the built-in __eq__, like
    namedtuples) are trusted when every element is: ``(AlwaysEqual(),)`` is not.
    """
    if _depth > 100:
        return False
    t = type(x)
    if t in _ATOMS:
        return True
    eq: Any = t.__eq__
    if eq is tuple.__eq__ or eq is frozenset.__eq__:
        return all(_trusted_key(e, _depth + 1) for e in x)
    return eq in _TRUSTED_EQ


def strict_eq(expected: Any, actual: Any, _depth: int = 0) -> bool:
    """Equality that only trusts built-in types' ``__eq__``.

    Objects of a type the harness does not know compare equal only when both sides have exactly
    the same type, and then through the expected side's ``__eq__``.
    """
    if _depth > 100:
        return False
    te, ta = type(expected), type(actual)
    if te in _ATOMS and ta in _ATOMS:
        return bool(expected == actual)
    if te in _NUMBERS or ta in _NUMBERS:
        scalars = _numpy_scalar_types()
        if ta in scalars and te in _NUMBERS:
            return bool(expected == actual.item())
        if te in scalars and ta in _NUMBERS:
            return bool(expected.item() == actual)
    if te in _SEQS and ta in _SEQS:
        if te is not ta:
            return False
        if len(expected) != len(actual):
            return False
        return all(strict_eq(e, a, _depth + 1) for e, a in zip(expected, actual, strict=True))
    if te in _MAPS and ta in _MAPS:
        if dict.__len__(expected) != dict.__len__(actual):
            return False
        # Keys are compared by the dict's own lookup, that is by the keys' __eq__: every key on
        # both sides must be one whose equality cannot lie (nested ones included).
        if not all(_trusted_key(k) for k in dict.keys(expected)) or not all(
            _trusted_key(k) for k in dict.keys(actual)
        ):
            return False
        for key in dict.keys(expected):
            if not dict.__contains__(actual, key):
                return False
            if not strict_eq(
                dict.__getitem__(expected, key), dict.__getitem__(actual, key), _depth + 1
            ):
                return False
        return True
    if te in _SETS and ta in _SETS:
        if not all(_trusted_key(x) for x in expected) or not all(_trusted_key(x) for x in actual):
            return False
        return set(expected) == set(actual)
    if te is ta and te not in _ATOMS | _SEQS | _MAPS | _SETS:
        return bool(expected == actual)
    return False


def _expected_on_right(node: ast.Compare) -> bool:
    """Decide which side of ``A == B`` is the expected value: the literal-looking side."""
    left, right = node.left, node.comparators[0]

    def literal(n: ast.expr) -> bool:
        try:
            ast.literal_eval(n)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return isinstance(n, ast.Name | ast.Attribute)
        return True

    return not (literal(left) and not literal(right))


class _StrictAsserts(ast.NodeTransformer):
    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        test = node.test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
            left, right = test.left, test.comparators[0]
            # Arguments stay in source order (left is evaluated first); the name says which
            # side holds the expected value.
            name = _EQ_NAME + "r" if _expected_on_right(test) else _EQ_NAME
            call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[left, right], keywords=[])
            msg = node.msg
            if msg is None:
                msg = ast.Constant(value=_truncate(ast.unparse(test)))
            new = ast.Assert(test=call, msg=msg)
            return ast.copy_location(new, node)
        return node


def _truncate(text: str, limit: int = _MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _describe(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return _truncate(text)


class _Outcome:
    def __init__(self) -> None:
        self.tests: list[dict[str, str]] = []
        self.memory_error = False
        self.code_error = ""

    def verdict(self, name: str, exc: BaseException | None) -> None:
        if exc is None:
            self.tests.append({"name": name, "status": "passed", "message": ""})
        elif isinstance(exc, AssertionError):
            self.tests.append({"name": name, "status": "failed", "message": _describe(exc)})
        else:
            if isinstance(exc, MemoryError):
                self.memory_error = True
            self.tests.append({"name": name, "status": "error", "message": _describe(exc)})


def _run_stmt(stmt: ast.stmt, ns: dict[str, Any]) -> BaseException | None:
    module = ast.Module(body=[stmt], type_ignores=[])
    try:
        exec(compile(module, "tests.py", "exec"), ns)
    except BaseException as exc:  # the job's exceptions, SystemExit included, are verdicts
        return exc
    return None


def run_tests(tests_src: str, ns: dict[str, Any], outcome: _Outcome) -> None:
    try:
        tree = ast.parse(tests_src, "tests.py")
    except SyntaxError as exc:
        outcome.verdict("tests", exc)
        return
    if not tree.body:
        # Empty, blank or comments only: nothing was checked, which is not a pass.
        outcome.verdict("tests", AssertionError("the tests contain no statement"))
        return
    names = [
        _truncate(ast.get_source_segment(tests_src, stmt) or ast.unparse(stmt), 200)
        for stmt in tree.body
    ]
    tree = ast.fix_missing_locations(_StrictAsserts().visit(tree))
    ns[_EQ_NAME] = strict_eq
    ns[_EQ_NAME + "r"] = lambda actual, expected: strict_eq(expected, actual)
    test_funcs = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    ]
    asserts = [n for n in tree.body if isinstance(n, ast.Assert)]
    if test_funcs:
        for stmt in tree.body:
            error = _run_stmt(stmt, ns)
            if error is not None:
                outcome.verdict(f"line {stmt.lineno}", error)
        for fn in test_funcs:
            func = ns.get(fn.name)
            if not callable(func):
                outcome.verdict(fn.name, NameError(f"{fn.name} is not callable"))
                continue
            try:
                func()
            except BaseException as exc:  # verdicts, not crashes
                outcome.verdict(fn.name, exc)
            else:
                outcome.verdict(fn.name, None)
    elif asserts:
        for stmt, name in zip(tree.body, names, strict=True):
            error = _run_stmt(stmt, ns)
            if isinstance(stmt, ast.Assert):
                outcome.verdict(f"line {stmt.lineno}: {name}", error)
            elif error is not None:
                outcome.verdict(f"line {stmt.lineno}", error)
    else:
        try:
            exec(compile(tree, "tests.py", "exec"), ns)
        except BaseException as exc:  # verdicts, not crashes
            outcome.verdict("tests", exc)
        else:
            outcome.verdict("tests", None)


Stdio = tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]


def fresh_stdio() -> Stdio:
    """New text streams on descriptors 0, 1 and 2.

    The supervisor builds them before it forks the job (descriptors 0-2 are pipes on both
    sides, so the streams are the same as if built in the child): allocating them in the child
    would copy-on-write a few dozen of the shared heap's pages, for every job.
    """
    return (
        io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8"),
        io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", line_buffering=False),
        io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace"
        ),
    )


def _install_stdio(stdio: Stdio) -> None:
    sys.stdin, sys.stdout, sys.stderr = stdio
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = stdio  # type: ignore[misc]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(OSError, ValueError):
        print(code, file=sys.stderr)
    return 1


def main(
    code: str, tests: str | None, record_fd: int, nonce_fd: int, stdio: Stdio | None = None
) -> int:
    """Run the job in this (already forked, already unprivileged) process; return an exit code.

    The caller passes the exit code to ``os._exit``: nothing unwinds into supervisor code.
    """
    write = os.write
    dumps = json.dumps
    nonce = os.read(nonce_fd, 64).decode()
    os.close(nonce_fd)
    # The record pipe moves to a high descriptor and its old number is closed.
    fd = os.dup(record_fd)
    os.close(record_fd)
    record_fd = fd
    _install_stdio(stdio if stdio is not None else fresh_stdio())
    sys.argv = ["main.py"]
    sys.path[:0] = [os.getcwd()]
    main_mod = type(sys)("__main__")
    sys.modules["__main__"] = main_mod
    ns = main_mod.__dict__
    ns["__builtins__"] = builtins
    ns["__file__"] = os.path.join(os.getcwd(), "main.py")
    outcome = _Outcome()
    exit_code = 0
    try:
        exec(compile(code, "main.py", "exec"), ns)
    except SystemExit as exc:
        exit_code = _exit_code(exc)
        if tests is not None:
            outcome.code_error = f"the code called exit({exc.code!r}) before the tests ran"
    except BaseException as exc:  # the job's failure, reported as such
        if isinstance(exc, MemoryError):
            outcome.memory_error = True
        # The traceback starts at the job's code, not in this harness.
        traceback.print_exception(
            type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None
        )
        exit_code = 1
        outcome.code_error = _describe(exc)
    if tests is not None and not outcome.code_error:
        run_tests(tests, ns, outcome)
    try:
        # Join non-daemon threads like CPython's exit does: only when the job imported
        # threading (the supervisor does not: its at-fork hook doubles the cost of a fork).
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        atexit._run_exitfuncs()
    except BaseException as exc:  # an atexit handler of the job failed
        outcome.code_error = outcome.code_error or _describe(exc)
    _flush()
    record = {
        "pid": os.getpid(),
        "nonce": nonce,
        "tests": outcome.tests if tests is not None else [],
        "memory_error": outcome.memory_error,
        "code_error": outcome.code_error,
        "with_tests": tests is not None,
    }
    data = dumps(record).encode() + b"\n"
    try:
        while data:
            data = data[write(record_fd, data) :]
    except OSError:
        return 1
    if tests is not None:
        passed = all(t["status"] == "passed" for t in outcome.tests) and not outcome.code_error
        return 0 if passed and outcome.tests else 1
    return exit_code
