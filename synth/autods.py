"""AutoDS scoring: YES/NO questions answered through the logprobs of the first token.

For one question, p = P(yes) / (P(yes) + P(no)), where P(yes) sums the probabilities of every
top-logprob alternative that is "yes" in any casing with or without a leading space (``YES``,
``Yes``, `` yes``, ``Ġyes``, ``▁Yes``, ...), and likewise for no. A sample's score is the
product over the question set (``synth/prompts/autods_questions.yaml``). Selection keeps the
samples at or above a threshold, or the top fraction by score, or both.

The scorer refuses a model whose tokenizer splits the answer words: where ``YES`` or ``NO``
(`` YES`` / `` NO`` after ``Answer:`` for the completions API) is not one token, the first
token's logprobs cannot carry the answer, and every score would silently be 0.0 or 1.0. The
check asks the server's ``/tokenize`` once per scorer (vLLM has it; a server without it is
not checked) and raises :class:`~.errors.ConfigError` naming the tokens.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, ParseError
from .llm import LLMClient, TokenLogprob
from .prompts import PromptTemplate, load_prompt, load_questions

__all__ = ["AutoDSScore", "AutoDSScorer", "select", "yes_no_probability"]

_SPACE_MARKS = " \t\n\u0120\u2581"  # plain whitespace, GPT-2's "Ġ", SentencePiece's "▁"


def _word(token: str) -> str:
    return token.lstrip(_SPACE_MARKS).rstrip().lower()


def yes_no_probability(alternatives: Mapping[str, float]) -> float | None:
    """P(yes) / (P(yes) + P(no)) from ``{token: logprob}``; ``None`` if neither appears."""
    p_yes = p_no = 0.0
    for token, logprob in alternatives.items():
        word = _word(token)
        if word == "yes":
            p_yes += math.exp(logprob)
        elif word == "no":
            p_no += math.exp(logprob)
    total = p_yes + p_no
    if total <= 0.0:
        return None
    return p_yes / total


def first_token_alternatives(tokens: Sequence[TokenLogprob]) -> dict[str, float]:
    """The first generated token's alternatives, including the token itself."""
    if not tokens:
        return {}
    first = tokens[0]
    out = dict(first.top)
    if not math.isnan(first.logprob):
        out.setdefault(first.token, first.logprob)
    return out


@dataclass(frozen=True, slots=True)
class AutoDSScore:
    score: float
    answers: dict[str, float] = field(default_factory=dict)


class AutoDSScorer:
    """Scores texts with one question set through an OpenAI-compatible server."""

    def __init__(
        self,
        llm: LLMClient,
        question_set: str = "code_quality",
        *,
        prompt_dir: Path | None = None,
        top_logprobs: int = 20,
        max_text_chars: int = 6000,
        deadline_s: float | None = 120.0,
        api: str = "chat",
    ) -> None:
        if api not in ("chat", "completions"):
            raise ConfigError(f"autods api must be chat or completions, got {api!r}")
        self.api = api
        self.llm = llm
        self.question_set = question_set
        self.questions = load_questions(question_set, prompt_dir)
        self.template: PromptTemplate = load_prompt("autods", prompt_dir)
        self.params = self.template.params(logprobs=True, top_logprobs=top_logprobs, max_tokens=1)
        self.max_text_chars = max_text_chars
        self.deadline_s = deadline_s
        self._check_lock = asyncio.Lock()
        self._checked = False

    async def check_tokenizer(self) -> None:
        """Raise :class:`ConfigError` when the served tokenizer splits YES or NO."""
        prefix = "" if self.api == "chat" else " "
        split = {}
        for word in ("YES", "NO"):
            ids = await self.llm.tokenize(prefix + word)
            if ids is None:
                return  # the server cannot tell; a missing answer still fails per question
            if len(ids) != 1:
                split[prefix + word] = ids
        if split:
            raise ConfigError(
                "AutoDS needs YES and NO to be single tokens of the served model's tokenizer, "
                f"but {', '.join(f'{w!r} is {len(i)} tokens {i}' for w, i in split.items())} "
                f"({self.api} API): the first token's logprobs cannot score the answer"
            )

    async def answer(self, text: str, question: str) -> float:
        async with self._check_lock:
            if not self._checked:
                await self.check_tokenizer()  # raises the same ConfigError on every call
                self._checked = True
        messages = self.template.messages(text=text[: self.max_text_chars], question=question)
        if self.api == "chat":
            out = await self.llm.chat(messages, self.params, deadline_s=self.deadline_s)
        else:
            # Base models without a chat template: the same meta-prompt as plain text, the
            # answer being the next token.
            prompt = "\n\n".join(m["content"] for m in messages) + "\nAnswer:"
            out = await self.llm.complete(prompt, self.params, deadline_s=self.deadline_s)
        choice = out.choices[0]
        p = yes_no_probability(first_token_alternatives(choice.logprobs or ()))
        if p is None:
            raise ParseError(
                "no_yes_no", f"neither YES nor NO among the top logprobs (got {choice.text!r})"
            )
        return p

    async def score(self, text: str) -> AutoDSScore:
        """All questions at once; the first failure cancels the rest and is raised as is."""
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = {qid: tg.create_task(self.answer(text, q)) for qid, q in self.questions}
        except* Exception as group:
            first = group.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        answers = {qid: task.result() for qid, task in tasks.items()}
        return AutoDSScore(score=math.prod(answers.values()), answers=answers)


def select(
    scores: Sequence[float], *, threshold: float | None = None, top_fraction: float | None = None
) -> list[bool]:
    """Which samples to keep: score >= threshold and/or among the top ``top_fraction``.

    The top fraction keeps ``ceil(fraction * n)`` samples; ties go to the earlier sample, so
    the choice is deterministic.
    """
    if threshold is None and top_fraction is None:
        raise ValueError("select() needs a threshold, a top_fraction, or both")
    keep = [True] * len(scores)
    if threshold is not None:
        keep = [s >= threshold for s in scores]
    if top_fraction is not None:
        if not 0 < top_fraction <= 1:
            raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
        k = math.ceil(top_fraction * len(scores))
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        top = set(order[:k])
        keep = [kept and i in top for i, kept in enumerate(keep)]
    return keep
