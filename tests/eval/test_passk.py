"""pass@k: the unbiased estimator against an independent exact computation."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest
from codekiln.eval.errors import ConfigError
from codekiln.eval.passk import mean_pass_at_k, pass_at_k
from hypothesis import given, settings
from hypothesis import strategies as st


def exact(n: int, c: int, k: int) -> Fraction:
    """1 - C(n-c, k)/C(n, k) in exact rational arithmetic (comb is 0 when k > n-c)."""
    return 1 - Fraction(comb(n - c, k), comb(n, k))


@st.composite
def nck(draw: st.DrawFn) -> tuple[int, int, int]:
    n = draw(st.integers(1, 300))
    c = draw(st.integers(0, n))
    k = draw(st.integers(1, n))
    return n, c, k


class TestPassAtK:
    @settings(deadline=None)  # timing on a shared machine is not the property
    @given(nck())
    def test_matches_exact_binomial_formula(self, args: tuple[int, int, int]) -> None:
        """The product form equals the exact binomial ratio on random (n, c, k)."""
        n, c, k = args
        assert pass_at_k(n, c, k) == pytest.approx(float(exact(n, c, k)), abs=1e-9)

    @settings(deadline=None)  # timing on a shared machine is not the property
    @given(nck())
    def test_is_a_probability_monotone_in_c(self, args: tuple[int, int, int]) -> None:
        """pass@k lies in [0, 1] and does not decrease when one more sample is correct."""
        n, c, k = args
        p = pass_at_k(n, c, k)
        assert 0.0 <= p <= 1.0
        if c < n:
            assert pass_at_k(n, c + 1, k) >= p - 1e-12

    def test_pass_at_1_is_the_fraction_correct(self) -> None:
        """pass@1 is c/n."""
        assert pass_at_k(10, 3, 1) == pytest.approx(0.3)

    def test_k_above_n_is_rejected(self) -> None:
        """pass@k with fewer samples than k is an error, not a number."""
        with pytest.raises(ConfigError, match="undefined"):
            pass_at_k(5, 1, 10)

    def test_mean_reports_only_k_up_to_smallest_n(self) -> None:
        """k in 1, 10, 100 is reported only where every task has n >= k."""
        scores = mean_pass_at_k([(20, 5), (10, 0)])
        assert set(scores) == {"pass@1", "pass@10"}
        assert scores["pass@1"] == pytest.approx((5 / 20 + 0) / 2)
