"""The client's settings: endpoints, retries and timeouts (:class:`LLMConfig`), and the sampling
parameters of one call with the request bodies they make (:class:`SamplingParams`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codekiln.checks import bound, check_bounds

from ..errors import ConfigError

__all__ = ["LLMConfig", "SamplingParams", "normalize_base_url"]


def normalize_base_url(url: str) -> str:
    """``http://h:8000/v1/`` and ``http://h:8000`` both become ``http://h:8000``."""
    base = url.strip().rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"llm endpoint {url!r} must start with http:// or https://")
    return base


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """Client settings. Units are in the names; validation raises :class:`ConfigError`."""

    endpoints: tuple[str, ...]
    model: str | None = None
    api_key: str | None = None
    max_concurrency_per_endpoint: int = bound(64, ">= 1")
    max_retries: int = bound(6, ">= 0")
    backoff_base_s: float = bound(0.25, "> 0")
    backoff_max_s: float = bound(20.0, "> 0")
    connect_timeout_s: float = bound(10.0, "> 0")
    read_timeout_s: float = bound(600.0, "> 0")
    breaker_failures: int = bound(5, ">= 1")
    breaker_reset_s: float = bound(10.0, "> 0")
    # Stop strings sent per request; vLLM refuses more than VLLM_MAX_STOP_STRINGS (default 4)
    # with HTTP 400. The others are applied by the client.
    max_stop_strings: int = bound(4, ">= 1")

    def __post_init__(self) -> None:
        if isinstance(self.endpoints, str) or not self.endpoints:
            raise ConfigError("llm.endpoints must be a non-empty list of base URLs")
        object.__setattr__(
            self, "endpoints", tuple(normalize_base_url(url) for url in self.endpoints)
        )
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ConfigError(f"llm.endpoints has duplicates: {list(self.endpoints)}")
        check_bounds(self, "llm", ConfigError)


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Sampling settings shared by completions and chat."""

    n: int = bound(1, ">= 1")
    temperature: float = bound(0.0, ">= 0")
    top_p: float = bound(1.0, "(0, 1]")
    max_tokens: int = bound(512, ">= 1")
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = bound(0, "[0, 20]")
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        check_bounds(self, "", ConfigError)

    def _common(self, max_stop_strings: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "n": self.n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        if self.stop:
            body["stop"] = list(self.stop[:max_stop_strings])
        if self.seed is not None:
            body["seed"] = self.seed
        body.update(self.extra)
        return body

    def completion_body(self, max_stop_strings: int | None = None) -> dict[str, Any]:
        """The request body; ``max_stop_strings`` caps the stop list sent (None: all)."""
        body = self._common(max_stop_strings)
        if self.logprobs:
            body["logprobs"] = self.top_logprobs
        return body

    def chat_body(self, max_stop_strings: int | None = None) -> dict[str, Any]:
        """The request body; ``max_stop_strings`` caps the stop list sent (None: all)."""
        body = self._common(max_stop_strings)
        if self.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        return body
