"""The Python harness's comparison and test semantics, in process (it is stdlib-only code)."""

from __future__ import annotations

import collections
from typing import Any

import hypothesis.strategies as st
from codekiln.sandbox.runner import harness
from hypothesis import given

atoms = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.text(max_size=5), st.booleans(), st.none()
)
values = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
    ),
    max_leaves=12,
)


class AlwaysEqual:
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


class LyingInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


@given(values, values)
def test_strict_eq_agrees_with_python_on_builtin_values(a: Any, b: Any) -> None:
    """On plain built-in values, strict_eq is exactly Python's ==."""
    assert harness.strict_eq(a, b) == (a == b)


@given(values)
def test_lying_objects_never_equal(expected: Any) -> None:
    """An always-equal object, bare or nested, never equals a built-in expected value."""
    assert not harness.strict_eq(expected, AlwaysEqual())
    assert not harness.strict_eq([expected], [LyingInt(0)])
    assert not harness.strict_eq({"k": expected}, {"k": AlwaysEqual()})


def test_counter_equals_dict() -> None:
    """collections types compare like Python does with their dict/list counterparts."""
    assert harness.strict_eq({"a": 2}, collections.Counter("aa"))
    assert not harness.strict_eq({"a": 1}, collections.Counter("aa"))


def _outcome(tests: str, code: str = "") -> list[tuple[str, str]]:
    ns: dict[str, Any] = {"__name__": "__main__"}
    exec(code, ns)
    outcome = harness._Outcome()
    harness.run_tests(tests, ns, outcome)
    return [(t["name"], t["status"]) for t in outcome.tests]


def test_test_functions_are_the_tests() -> None:
    """With test_* functions, each is one test; top-level asserts are not counted."""
    got = _outcome("x = 1\ndef test_a():\n    assert x == 1\ndef test_b():\n    assert x == 2\n")
    assert got == [("test_a", "passed"), ("test_b", "failed")]


def test_top_level_asserts_are_the_tests() -> None:
    """Without test_* functions, each top-level assert is one test and all are run."""
    got = _outcome("assert 1 == 2\nassert 2 == 2\n")
    assert [s for _, s in got] == ["failed", "passed"]
    assert got[0][0] == "line 1: assert 1 == 2"


def test_block_without_asserts_is_one_test() -> None:
    """A tests block with neither (e.g. HumanEval's check(candidate)) is one test."""
    code = "def inc(x):\n    return x + 1\n"
    tests = "def check(candidate):\n    assert candidate(1) == 2\n\ncheck(inc)\n"
    assert _outcome(tests, code) == [("tests", "passed")]
    bad = "def check(candidate):\n    assert candidate(1) == 3\n\ncheck(inc)\n"
    assert _outcome(bad, code) == [("tests", "failed")]


def test_error_in_test_is_error_not_failure() -> None:
    """An exception other than AssertionError is an 'error' verdict."""
    assert _outcome("def test_x():\n    1 / 0\n") == [("test_x", "error")]


def test_always_equal_fails_inside_check_functions() -> None:
    """Strict comparison applies to asserts nested in helper functions too."""
    code = "class A:\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return A()\n"
    tests = "def check(c):\n    assert c(1) == 2\n\ncheck(f)\n"
    assert _outcome(tests, code) == [("tests", "failed")]
