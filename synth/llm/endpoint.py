"""Per-endpoint state: the concurrency slot, outstanding count, 429 cool-down and circuit
breaker, with the running totals (:class:`EndpointStats`) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from ..errors import LLMConnectionError, LLMError, LLMRateLimited, LLMServerError, LLMTimeout
from .replies import Completion

__all__ = ["PROBE_POLL_S", "Endpoint", "EndpointStats"]

_REQUESTS = Counter(
    "codekiln_llm_requests", "HTTP attempts to LLM endpoints by outcome", ["endpoint", "outcome"]
)
_TOKENS = Counter("codekiln_llm_tokens", "Tokens reported by LLM endpoints", ["endpoint", "kind"])
_LATENCY = Histogram(
    "codekiln_llm_latency_seconds",
    "Latency of successful LLM requests",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
_INFLIGHT = Gauge("codekiln_llm_inflight", "Requests outstanding per endpoint", ["endpoint"])
_CIRCUIT = Gauge("codekiln_llm_circuit_open", "1 while an endpoint's circuit is open", ["endpoint"])


PROBE_POLL_S = 0.05


@dataclass(slots=True)
class EndpointStats:
    """Running totals for one endpoint (``LLMClient.stats()`` returns copies)."""

    requests: int = 0
    successes: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_sum_s: float = 0.0
    latency_max_s: float = 0.0
    circuit_opens: int = 0

    @property
    def mean_latency_s(self) -> float:
        return self.latency_sum_s / self.successes if self.successes else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "successes": self.successes,
            "failures": dict(self.failures),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "mean_latency_s": round(self.mean_latency_s, 4),
            "max_latency_s": round(self.latency_max_s, 4),
            "circuit_opens": self.circuit_opens,
        }


class Endpoint:
    """Mutable per-endpoint state; only touched from the event loop thread."""

    __slots__ = (
        "base",
        "breaker_failures",
        "breaker_reset_s",
        "consecutive_failures",
        "cooling_until",
        "m_inflight",
        "open_until",
        "outstanding",
        "probing",
        "semaphore",
        "stats",
    )

    def __init__(
        self, base: str, cap: int, *, breaker_failures: int, breaker_reset_s: float
    ) -> None:
        self.base = base
        self.breaker_failures = breaker_failures
        self.breaker_reset_s = breaker_reset_s
        self.semaphore = asyncio.Semaphore(cap)
        self.outstanding = 0
        self.consecutive_failures = 0
        self.open_until = 0.0  # circuit open while now < open_until; 0 = closed
        self.probing = False  # half-open: one probe in flight
        self.cooling_until = 0.0  # 429 Retry-After
        self.stats = EndpointStats()
        self.m_inflight = _INFLIGHT.labels(base)

    def wake_time(self, now: float) -> float | None:
        """``None`` if the endpoint can take a request now, else when it may."""
        later = max(self.cooling_until, self.open_until)
        if later > now:
            return later
        if self.open_until and self.probing:
            return now + PROBE_POLL_S  # a probe is in flight; check again soon
        return None

    def open_circuit(self, now: float) -> None:
        self.open_until = now + self.breaker_reset_s
        self.probing = False
        self.stats.circuit_opens += 1
        _CIRCUIT.labels(self.base).set(1)

    def record_failure(self, exc: LLMError, now: float, probe: bool) -> None:
        kind = type(exc).__name__
        self.stats.failures[kind] = self.stats.failures.get(kind, 0) + 1
        _REQUESTS.labels(self.base, kind).inc()
        if isinstance(exc, LLMRateLimited):
            # Overload, not breakage: cool down for the hinted time, leave the circuit alone.
            self.cooling_until = max(self.cooling_until, now + (exc.retry_after_s or 1.0))
            if probe:
                self.probing = False
            return
        if isinstance(exc, LLMServerError | LLMConnectionError | LLMTimeout):
            self.consecutive_failures += 1
            # Requests already in flight when the circuit opened do not re-open it.
            if probe or (
                not self.open_until and self.consecutive_failures >= self.breaker_failures
            ):
                self.open_circuit(now)
            if exc.retry_after_s:
                self.cooling_until = max(self.cooling_until, now + exc.retry_after_s)
        elif probe:
            self.probing = False

    def record_success(self, completion: Completion, latency: float) -> None:
        self.consecutive_failures = 0
        if self.open_until:
            self.open_until = 0.0
            _CIRCUIT.labels(self.base).set(0)
        self.probing = False
        stats = self.stats
        stats.successes += 1
        stats.prompt_tokens += completion.usage.prompt_tokens
        stats.completion_tokens += completion.usage.completion_tokens
        stats.latency_sum_s += latency
        stats.latency_max_s = max(stats.latency_max_s, latency)
        _REQUESTS.labels(self.base, "ok").inc()
        _LATENCY.labels(self.base).observe(latency)
        if completion.usage.prompt_tokens:
            _TOKENS.labels(self.base, "prompt").inc(completion.usage.prompt_tokens)
        if completion.usage.completion_tokens:
            _TOKENS.labels(self.base, "completion").inc(completion.usage.completion_tokens)
