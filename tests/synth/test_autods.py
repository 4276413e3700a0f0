"""AutoDS: YES/NO probabilities from logprobs, product scores, selection."""

from __future__ import annotations

import math

import pytest
from codekiln.synth.autods import AutoDSScorer, select, yes_no_probability
from codekiln.synth.errors import ParseError
from codekiln.synth.llm import LLMClient
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.openai_server import FakeOpenAIServer, Reply

logprob = st.floats(min_value=-20, max_value=0, allow_nan=False)


class TestProbability:
    def test_all_casings_and_spaces_count(self) -> None:
        """YES, Yes, ' yes', 'Ġyes' and '▁Yes' all add to P(yes)."""
        probs = {
            "YES": 0.2,
            "Yes": 0.1,
            " yes": 0.05,
            "\u0120yes": 0.05,
            "\u2581Yes": 0.1,
            "NO": 0.5,
        }
        top = {token: math.log(p) for token, p in probs.items()}
        assert yes_no_probability(top) == pytest.approx(0.5)

    def test_other_tokens_are_ignored(self) -> None:
        """Tokens other than yes/no do not dilute the ratio."""
        top = {"YES": math.log(0.3), "Maybe": math.log(0.6), "NO": math.log(0.1)}
        assert yes_no_probability(top) == pytest.approx(0.75)

    def test_neither_is_none(self) -> None:
        """Without yes or no among the alternatives there is no probability."""
        assert yes_no_probability({"Maybe": -0.1, "yesterday": -1.0}) is None

    @given(logprob, logprob)
    def test_swapping_yes_and_no_complements(self, a: float, b: float) -> None:
        """p(yes=a, no=b) + p(yes=b, no=a) == 1, and p lies in [0, 1]."""
        p = yes_no_probability({"YES": a, "NO": b})
        q = yes_no_probability({"YES": b, "NO": a})
        assert p is not None
        assert q is not None
        assert 0.0 <= p <= 1.0
        assert p + q == pytest.approx(1.0)


class TestSelect:
    def test_threshold(self) -> None:
        """Scores at or above the threshold are kept."""
        assert select([0.2, 0.5, 0.9], threshold=0.5) == [False, True, True]

    def test_top_fraction_ties_go_to_earlier(self) -> None:
        """ceil(fraction * n) samples are kept; equal scores favour the earlier one."""
        assert select([0.5, 0.9, 0.5, 0.1], top_fraction=0.5) == [True, True, False, False]

    def test_both(self) -> None:
        """With both, a sample must pass the threshold and be in the top fraction."""
        assert select([0.9, 0.8, 0.1], threshold=0.85, top_fraction=1.0) == [True, False, False]

    @given(st.lists(st.floats(0, 1), min_size=1, max_size=50), st.floats(0.01, 1))
    def test_top_fraction_size(self, scores: list[float], fraction: float) -> None:
        """The number kept is exactly ceil(fraction * n)."""
        assert sum(select(scores, top_fraction=fraction)) == math.ceil(fraction * len(scores))

    def test_needs_a_rule(self) -> None:
        """Selecting with neither rule is an error."""
        with pytest.raises(ValueError, match="threshold"):
            select([0.1])


class TestScorer:
    async def test_score_is_product_over_questions(
        self, fake_llm: FakeOpenAIServer, llm: LLMClient
    ) -> None:
        """Each question's p comes from the logprobs; the score is their product."""
        fake_llm.route(
            "mathematical intelligence",
            Reply("YES", top_logprobs=[{"YES": math.log(0.6), "NO": math.log(0.2)}]),
        )
        half = math.log(0.5)
        fake_llm.route(
            "educational purposes", Reply("NO", top_logprobs=[{"NO": half, " Yes": half}])
        )
        scorer = AutoDSScorer(llm, "math_intelligence")
        result = await scorer.score("Let x be a prime number greater than 2.")
        assert result.answers == pytest.approx({"math_intelligence": 0.75, "math_educational": 0.5})
        assert result.score == pytest.approx(0.375)
        body = fake_llm.requests[-1].body
        assert (body["logprobs"], body["top_logprobs"], body["max_tokens"]) == (True, 20, 1)

    async def test_no_yes_no_raises(self, fake_llm: FakeOpenAIServer, llm: LLMClient) -> None:
        """A model that answers neither YES nor NO gives a ParseError, not a score."""
        fake_llm.default = lambda prompt, i: Reply("Perhaps", top_logprobs=[{"Perhaps": -0.1}])
        with pytest.raises(ParseError, match="no_yes_no"):
            await AutoDSScorer(llm, "code_quality").score("x = 1")


async def test_completions_api_for_base_models(fake_llm: FakeOpenAIServer, llm: LLMClient) -> None:
    """With api='completions' the meta-prompt goes to /v1/completions with logprobs."""
    fake_llm.route(
        "Question:", Reply("YES", top_logprobs=[{"YES": math.log(0.9), "NO": math.log(0.1)}])
    )
    result = await AutoDSScorer(llm, "code_task", api="completions").score("Sort a list.")
    assert result.score == pytest.approx(0.81)
    request = fake_llm.requests[-1]
    assert request.path == "/v1/completions"
    assert request.body["logprobs"] == 20
