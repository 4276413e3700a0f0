"""The in-sandbox harness's comparison logic, exercised in-process (it is stdlib-only)."""

from __future__ import annotations

from collections import Counter, namedtuple
from typing import Any

import numpy as np
import pytest
from codekiln.eval import _harness as h
from hypothesis import given, settings
from hypothesis import strategies as st


class AlwaysEqual:
    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0


class LyingInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


class LyingList(list):  # type: ignore[type-arg]
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


def check(
    expected: Any, out: Any, *, dataset: str = "humaneval", ep: str = "f", atol: float = 0.0
) -> str | None:
    record = h.expected_record(expected, h.ships_value(dataset, ep, atol))
    return h.Checker(dataset, ep, atol).check((), out, record)


class TestStrictComparison:
    def test_always_equal_object_fails(self) -> None:
        """An object whose __eq__ always answers True does not pass."""
        assert check(3, AlwaysEqual()) is not None

    def test_always_equal_object_nested_in_a_list_fails(self) -> None:
        """A list of always-equal objects does not pass against a list of ints."""
        assert check([1, 2], [AlwaysEqual(), AlwaysEqual()]) is not None

    def test_int_subclass_with_lying_eq_is_judged_by_its_value(self) -> None:
        """An int subclass is compared by its int value, not its __eq__."""
        assert check(5, LyingInt(4)) is not None
        assert check(5, LyingInt(5)) is None

    def test_list_subclass_with_lying_eq_is_judged_by_its_items(self) -> None:
        """A list subclass is compared by its items."""
        assert check([1, 2], LyingList([9])) is not None
        assert check([1, 2], LyingList([1, 2])) is None

    def test_namedtuple_equals_a_tuple(self) -> None:
        """A namedtuple passes against an equal tuple, as it does under evalplus."""
        point = namedtuple("point", "x y")
        assert check((1, 2), point(1, 2)) is None

    def test_counter_equals_a_dict(self) -> None:
        """A Counter passes against an equal dict."""
        assert check({"a": 2}, Counter("aa")) is None

    def test_numpy_scalar_equals_a_python_number(self) -> None:
        """numpy scalars are read through .item() and compared as Python numbers."""
        assert check(5, np.int64(5)) is None
        assert check(5, np.int64(6)) is not None

    def test_int_equals_float_as_in_python(self) -> None:
        """1 == 1.0 holds, as evalplus's ``exp == out`` has it."""
        assert check(1, 1.0) is None

    def test_float_tolerance_for_float_expected_values(self) -> None:
        """A float expected value gets atol 1e-6 (evalplus's rule)."""
        assert check(0.1 + 0.2, 0.3) is None
        assert check(0.3, 0.31) is not None

    def test_tolerance_requires_the_same_type(self) -> None:
        """Outside exact equality, the output's type must be the expected one."""
        assert check([1.5, 2.5], (1.5, 2.5000000001)) is not None
        assert check([1.5, 2.5], [1.5, 2.5000000001]) is None


class TestSpecialOracles:
    def test_find_zero_is_checked_by_evaluating_the_polynomial(self) -> None:
        """HumanEval find_zero passes any root within atol, not only the expected one."""
        checker = h.Checker("humaneval", "find_zero", 1e-6)
        assert checker.check(([-6, 11, -6, 1],), 2.0, ("v", 1.0)) is None
        assert checker.check(([-6, 11, -6, 1],), 2.5, ("v", 1.0)) is not None

    def test_set_equality_tasks_ignore_order(self) -> None:
        """MBPP set-equality tasks compare set(out) with set(exp)."""
        checker = h.Checker("mbpp", "similar_elements", 0.0)
        assert checker.check((), [3, 1], ("v", [1, 3])) is None

    def test_not_none_tasks_ask_only_for_none_ness(self) -> None:
        """MBPP's regex tasks pass any non-None result where one is expected."""
        checker = h.Checker("mbpp", "text_match_three", 0.0)
        assert checker.check((), object(), ("v", True)) is None
        assert checker.check((), None, ("v", True)) is not None


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.binary(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=4)
        | st.sets(st.integers(), max_size=4)
        | st.dictionaries(st.integers() | st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


def floatify(value: Any) -> Any:
    """The same value with small ints turned into equal floats (so == still holds)."""
    if type(value) is int and abs(value) < 2**53:
        return float(value)
    if type(value) is list:
        return [floatify(v) for v in value]
    if type(value) is tuple:
        return tuple(floatify(v) for v in value)
    if type(value) is dict:
        return {k: floatify(v) for k, v in value.items()}
    return value


class TestDigest:
    @settings(deadline=None)  # timing on a shared machine is not the property
    @given(JSONISH, JSONISH)
    def test_digests_agree_exactly_when_values_are_equal(self, a: Any, b: Any) -> None:
        """For float-free values, equal digests if and only if ==."""
        assert (h.digest(a) == h.digest(b)) == (a == b)

    @settings(deadline=None)  # timing on a shared machine is not the property
    @given(JSONISH)
    def test_an_equal_value_with_floats_has_the_same_digest(self, a: Any) -> None:
        """Integral floats in place of ints (1.0 == 1) keep the digest."""
        b = floatify(a)
        assert b == a
        assert h.digest(b) == h.digest(a)

    def test_huge_ints_are_encoded(self) -> None:
        """Ints past Python's decimal str() limit are digested (hex encoding)."""
        big = 7**20000
        assert h.digest([big]) == h.digest([big])
        assert h.digest([big]) != h.digest([big + 1])

    def test_large_outputs_ship_as_digests_and_small_as_values(self) -> None:
        """A large float-free output is shipped as a digest, a small one as its value."""
        assert h.expected_record(list(range(5000)), False)[0] == "h"
        assert h.expected_record([1, 2], False)[0] == "v"
        assert h.expected_record([0.5] * 5000, False)[0] == "v"

    def test_digest_record_rejects_a_different_large_output(self) -> None:
        """A digest record fails an output that differs in one element."""
        expected = list(range(5000))
        wrong = [*expected[:-1], -1]
        assert check(expected, wrong) is not None
        assert check(expected, list(range(5000))) is None


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        (1.0, 1.0 + 1e-9, True),
        (float("nan"), float("nan"), False),
        (float("inf"), float("inf"), True),
        ([1.0, 2.0], [1.0, 2.1], False),
        ([[1.0], [2.0]], [[1.0], [2.0000001]], True),
        ("a", "a", False),
    ],
)
def test_allclose_matches_numpy(a: Any, b: Any, close: bool) -> None:
    """allclose agrees with numpy.allclose on numbers and nested sequences."""
    assert h.allclose(a, b, 1e-7, 1e-6) is close
    try:
        expected = bool(np.allclose(a, b, rtol=1e-7, atol=1e-6))
    except TypeError:
        expected = False
    assert expected is close


def run_check(
    solution: str,
    inputs: list[Any],
    expected: list[Any],
    *,
    limit_s: float = 1.0,
    budget_s: float = 10.0,
    job_cpu_s: float = 100.0,
) -> tuple[str, str, dict[str, Any]]:
    job = {
        "time_limits_s": [limit_s] * len(inputs),
        "budget_s": budget_s,
        "job_cpu_s": job_cpu_s,
        "dataset": "humaneval",
        "entry_point": "f",
        "atol": 0.0,
    }
    records = [h.expected_record(v, False) for v in expected]
    status, detail, progress = h.run_check(job, solution, inputs, records)
    return status, detail, progress


LOOP = "def f(x):\n    while True:\n        pass\n"


class TestTimeLimits:
    """evalplus 0.3.1's untrusted_check: a per-input limit ("fail") and a per-part budget
    ("timeout"), here on CPU time. Every case is an endless loop, so no timing is asserted."""

    def test_a_call_past_its_limit_fails_the_input(self) -> None:
        """An endless call under a budget larger than its limit is a failed input."""
        status, detail, _ = run_check(LOOP, [[1], [2]], [1, 2], limit_s=0.05, budget_s=10.0)
        assert (status, detail.split(":")[0]) == ("fail", "0")

    def test_a_call_past_the_parts_budget_is_a_timeout(self) -> None:
        """When the part's budget runs out before the call's own limit: "timeout"."""
        status, _, _ = run_check(LOOP, [[1]], [1], limit_s=5.0, budget_s=0.05)
        assert status == "timeout"

    def test_a_module_that_never_finishes_loading_is_a_timeout(self) -> None:
        """Loading counts against the part's budget (evalplus execs it inside its timeout)."""
        solution = "while True:\n    pass\n" + "def f(x):\n    return x\n"
        status, detail, _ = run_check(solution, [[1]], [1], budget_s=0.05)
        assert (status, detail.split(":")[0]) == ("timeout", "-1")

    def test_right_answers_pass_and_report_the_end(self) -> None:
        """Every input answered right: pass, and no next input to go on from."""
        status, _, progress = run_check("def f(x):\n    return x\n", [[1], [2]], [1, 2])
        assert status == "pass"
        assert progress["next"] is None

    def test_a_wrong_answer_fails_at_its_index(self) -> None:
        """The first wrong answer fails the part and is named."""
        status, detail, _ = run_check("def f(x):\n    return 1\n", [[1], [2], [3]], [1, 2, 3])
        assert (status, detail.split(":")[0]) == ("fail", "1")

    def test_a_job_hands_over_between_inputs_when_its_share_is_spent(self) -> None:
        """A job whose CPU share cannot hold the next input's limit stops before it, with a
        pass so far and the index to go on from; it always runs at least one input."""
        status, _, progress = run_check(
            "def f(x):\n    return x\n", [[1], [2], [3]], [1, 2, 3], job_cpu_s=1e-9
        )
        assert (status, progress["next"]) == ("pass", 1)


class TestDefaults:
    def test_limits_are_evalplus_defaults(self) -> None:
        """max(1.0 s, 4 x reference) per input; min(60, sum) + 2 s per part (evalplus 0.3.1)."""
        from codekiln.eval.execute import ExecConfig

        cfg = ExecConfig()
        assert cfg.limits([0.01, 0.5]) == [1.0, 2.0]
        assert cfg.part_budget_s(cfg.limits([0.01] * 10)) == 12.0
        assert cfg.part_budget_s(cfg.limits([0.01] * 100)) == 62.0

    def test_defaults_are_evalplus_config_values(self) -> None:
        """The defaults are the constants of the installed evalplus's config module."""
        from codekiln.eval.execute import ExecConfig
        from evalplus import config

        assert ExecConfig().min_time_limit_s == config.DEFAULT_MIN_TIME_LIMIT
        assert ExecConfig().time_limit_factor == config.DEFAULT_GT_TIME_LIMIT_FACTOR


class TestStatusLabels:
    """How a sandbox result maps to evalplus's labels."""

    @staticmethod
    def result(status: str, message: str = "") -> Any:
        from codekiln.sandbox.client import RunResult, TestVerdict

        tests = [TestVerdict("test_codekiln_eval", "failed", message)] if message else []
        return RunResult(status=status, tests=tests)  # type: ignore[arg-type]

    def test_a_failed_input_is_fail_with_its_index(self) -> None:
        """The harness's failed input: "fail" at that input."""
        from codekiln.eval.execute import verdict_of

        v = verdict_of(self.result("failed", f"AssertionError: {h.FAIL_PREFIX}3: wrong"))
        assert (v.status, v.fail_index) == ("fail", 3)

    def test_a_spent_budget_is_timeout(self) -> None:
        """The harness's spent part budget: "timeout"."""
        from codekiln.eval.execute import verdict_of

        v = verdict_of(self.result("failed", f"AssertionError: {h.TIMEOUT_PREFIX}0: budget"))
        assert v.status == "timeout"

    def test_a_process_that_ends_without_a_verdict_is_timeout(self) -> None:
        """os._exit or a signal: evalplus leaves the status unset and reports "timeout"."""
        from codekiln.eval.execute import verdict_of

        assert verdict_of(self.result("failed")).status == "timeout"

    def test_memory_exceeded_is_fail(self) -> None:
        """Past the memory cap (evalplus: a MemoryError under its rlimit): "fail"."""
        from codekiln.eval.execute import verdict_of

        assert verdict_of(self.result("memory_exceeded")).status == "fail"
