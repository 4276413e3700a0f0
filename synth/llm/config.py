"""The client's settings: endpoints, retries and timeouts (:class:`LLMConfig`), and the sampling
parameters of one call with the request bodies they make (:class:`SamplingParams`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..checks import require_int_at_least, require_positive_number
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
    max_concurrency_per_endpoint: int = 64
    max_retries: int = 6
    backoff_base_s: float = 0.25
    backoff_max_s: float = 20.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 600.0
    breaker_failures: int = 5
    breaker_reset_s: float = 10.0
    # Stop strings sent per request; vLLM refuses more than VLLM_MAX_STOP_STRINGS (default 4)
    # with HTTP 400. The others are applied by the client.
    max_stop_strings: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.endpoints, str) or not self.endpoints:
            raise ConfigError("llm.endpoints must be a non-empty list of base URLs")
        object.__setattr__(
            self, "endpoints", tuple(normalize_base_url(url) for url in self.endpoints)
        )
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ConfigError(f"llm.endpoints has duplicates: {list(self.endpoints)}")
        require_int_at_least(
            self, "llm", ("max_concurrency_per_endpoint", "breaker_failures", "max_stop_strings"), 1
        )
        require_int_at_least(self, "llm", ("max_retries",), 0)
        require_positive_number(
            self,
            "llm",
            ("backoff_base_s", "backoff_max_s", "connect_timeout_s", "read_timeout_s",
             "breaker_reset_s"),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Sampling settings shared by completions and chat."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0 <= self.top_logprobs <= 20:
            raise ConfigError(f"top_logprobs must be in 0..20, got {self.top_logprobs}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ConfigError(
                f"temperature must be >= 0 and top_p in (0, 1], got {self.temperature}, "
                f"{self.top_p}"
            )

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
