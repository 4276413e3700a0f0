"""What a call returns (:class:`Completion` and its parts) and how an OpenAI completion or
chat-completion reply body becomes one (:func:`parse_reply`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import LLMProtocolError

__all__ = ["Choice", "Completion", "TokenLogprob", "Usage", "parse_reply"]


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token, its logprob, and the top alternatives at that position."""

    token: str
    logprob: float
    top: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Choice:
    index: int
    prompt_index: int
    text: str
    finish_reason: str | None
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished call: choices ordered by ``index`` (prompt-major, as the server numbers them)."""

    choices: tuple[Choice, ...]
    usage: Usage
    model: str
    endpoint: str
    latency_s: float
    attempts: int

    def texts(self, prompt_index: int = 0) -> list[str]:
        return [c.text for c in self.choices if c.prompt_index == prompt_index]


def parse_logprobs(raw: Any, chat: bool) -> tuple[TokenLogprob, ...] | None:
    if raw is None:
        return None
    if chat:
        content = raw.get("content") or []
        return tuple(
            TokenLogprob(
                token=str(item["token"]),
                logprob=float(item["logprob"]),
                top={str(t["token"]): float(t["logprob"]) for t in item.get("top_logprobs") or []},
            )
            for item in content
        )
    tokens = raw.get("tokens") or []
    token_lps = raw.get("token_logprobs") or []
    tops = raw.get("top_logprobs") or [None] * len(tokens)
    return tuple(
        TokenLogprob(
            token=str(tok),
            logprob=float(lp) if lp is not None else float("nan"),
            top={str(k): float(v) for k, v in (top or {}).items()},
        )
        for tok, lp, top in zip(tokens, token_lps, tops, strict=True)
    )


def parse_reply(
    raw: bytes, *, n: int, prompts: int, chat: bool, base: str, latency: float, attempts: int
) -> Completion:
    """The completion in ``raw``: choice ``index`` is ``prompt * n + sample`` (the OpenAI API's and
    vLLM's numbering), so exactly the indices ``0 .. prompts * n - 1`` must come back, each once;
    a reply with a missing, repeated or extra index is refused, not regrouped."""
    try:
        body = json.loads(raw)
        choices = []
        for item in body["choices"]:
            index = int(item["index"])
            text = item["message"]["content"] if chat else item["text"]
            choices.append(
                Choice(
                    index=index,
                    prompt_index=0 if chat else index // n,
                    text=str(text or ""),
                    finish_reason=item.get("finish_reason"),
                    logprobs=parse_logprobs(item.get("logprobs"), chat),
                )
            )
        usage_raw = body.get("usage") or {}
        usage = Usage(
            prompt_tokens=int(usage_raw.get("prompt_tokens") or 0),
            completion_tokens=int(usage_raw.get("completion_tokens") or 0),
        )
        model = str(body.get("model", ""))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LLMProtocolError(
            f"reply from {base} is not an OpenAI {'chat ' if chat else ''}completion: "
            f"{raw[:200]!r}",
            endpoint=base,
        ) from exc
    choices.sort(key=lambda c: c.index)
    expected = n * prompts
    if [c.index for c in choices] != list(range(expected)):
        raise LLMProtocolError(
            f"reply from {base} has choice indices {_index_summary(choices)}; "
            f"{prompts} prompt(s) x n={n} ask for exactly 0..{expected - 1}, each once",
            endpoint=base,
        )
    return Completion(
        choices=tuple(choices),
        usage=usage,
        model=model,
        endpoint=base,
        latency_s=latency,
        attempts=attempts,
    )


def _index_summary(choices: list[Choice]) -> str:
    indices = [c.index for c in choices]
    shown = ", ".join(map(str, indices[:8])) + (", ..." if len(indices) > 8 else "")
    return f"[{shown}] ({len(indices)} choices)"
