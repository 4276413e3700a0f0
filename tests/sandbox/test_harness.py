"""The Python harness's comparison and test semantics, in process (it is stdlib-only code)."""

from __future__ import annotations

import collections
import enum
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


hashables = st.recursive(
    atoms,
    lambda inner: st.one_of(st.tuples(inner, inner), st.frozensets(inner, max_size=3)),
    max_leaves=8,
)
keyed = st.one_of(
    st.sets(hashables, max_size=4),
    st.frozensets(hashables, max_size=4),
    st.dictionaries(hashables, values, max_size=3),
)


class SameHashAlwaysEqual:
    """Equal to everything, with the hash of 1: it finds its way into any set or dict lookup."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash(1)


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


class Level(enum.IntEnum):
    LOW = 1


@given(keyed, keyed)
def test_strict_eq_agrees_with_python_on_sets_and_keys(a: Any, b: Any) -> None:
    """Sets, frozensets and dicts keyed by tuples and frozensets compare exactly like ==."""
    assert harness.strict_eq(a, b) == (a == b)


class TestHiddenLiars:
    """An always-equal object hidden where Python's own set and dict lookups compare it."""

    def test_inside_a_tuple_set_element(self) -> None:
        """{(liar, 2)} is not {(1, 2)}, although Python says they are equal."""
        liar = (SameHashAlwaysEqual(), 2)
        assert {(1, 2)} == {liar}
        assert not harness.strict_eq({(1, 2)}, {liar})
        assert not harness.strict_eq(frozenset({(1, 2)}), frozenset({liar}))

    def test_inside_a_tuple_dict_key(self) -> None:
        """{(liar,): v} is not {(1,): v} on either side."""
        assert {(SameHashAlwaysEqual(),): "v"} == {(1,): "v"}
        assert not harness.strict_eq({(1,): "v"}, {(SameHashAlwaysEqual(),): "v"})
        assert not harness.strict_eq({(SameHashAlwaysEqual(),): "v"}, {(1,): "v"})

    def test_inside_a_frozenset_key(self) -> None:
        """A liar inside a frozenset key is not trusted either."""
        assert not harness.strict_eq({frozenset({1}): 0}, {frozenset({SameHashAlwaysEqual()}): 0})

    def test_bare_set_element(self) -> None:
        """A bare liar as a set element is refused too."""
        assert not harness.strict_eq({1}, {SameHashAlwaysEqual()})


class TestHonestKeys:
    """Keys whose equality is built in compare like Python does."""

    def test_frozenset_keys(self) -> None:
        """{frozenset: v} equals an equal dict."""
        assert harness.strict_eq({frozenset({1, 2}): "a"}, {frozenset({2, 1}): "a"})
        assert not harness.strict_eq({frozenset({1}): "a"}, {frozenset({2}): "a"})
        assert harness.strict_eq({frozenset({1})}, {frozenset({1})})

    def test_enum_keys(self) -> None:
        """Enum members (identity equality) and IntEnum members (int equality) as keys."""
        assert harness.strict_eq({Colour.RED: 1}, {Colour.RED: 1})
        assert not harness.strict_eq({Colour.RED: 1}, {Colour.BLUE: 1})
        assert harness.strict_eq({Level.LOW: "x"}, {1: "x"})
        assert harness.strict_eq({Colour.RED, Colour.BLUE}, {Colour.BLUE, Colour.RED})

    def test_namedtuple_keys(self) -> None:
        """A namedtuple keeps tuple equality: trusted when its fields are."""
        point = collections.namedtuple("point", "x y")
        assert harness.strict_eq({point(1, 2): 0}, {(1, 2): 0})
        assert not harness.strict_eq({(1, 2): 0}, {point(SameHashAlwaysEqual(), 2): 0})


def test_empty_tests_fail() -> None:
    """tests that contain no statement (empty, blank, comments) check nothing: not a pass."""
    for tests in ("", "   \n", "# nothing\n"):
        assert _outcome(tests) == [("tests", "failed")]
