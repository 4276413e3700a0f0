"""An async client for OpenAI-compatible servers (vLLM), on aiohttp, for many replicas.

Usage::

    from codekiln.synth.llm import LLMClient, LLMConfig, SamplingParams

    config = LLMConfig(endpoints=("http://127.0.0.1:8000", "http://127.0.0.1:8001"))
    async with LLMClient(config) as llm:
        await llm.wait_ready(timeout_s=60)          # GET /v1/models; learns the model name
        params = SamplingParams(n=4, temperature=0.8, max_tokens=256, stop=("\\n\\n",))
        out = await llm.complete(["def add(a, b):", "def sub(a, b):"], params)
        out.texts(prompt_index=1)                     # the 4 samples of the second prompt
        chat = await llm.chat([{"role": "user", "content": "Is this code? YES or NO"}],
                              SamplingParams(max_tokens=1, logprobs=True, top_logprobs=20),
                              deadline_s=30)
        chat.choices[0].logprobs[0].top               # {"YES": -0.1, "NO": -2.4, ...}
        llm.stats()                                   # per-endpoint usage, latency, failures

API
---
- :class:`LLMConfig`: endpoints (base URLs; a trailing ``/v1`` is accepted), model (``None``:
  the first id ``/v1/models`` lists), per-endpoint concurrency cap, retry / backoff / timeout /
  circuit-breaker settings. Frozen; validated on construction (:class:`~.errors.ConfigError`).
- :class:`SamplingParams`: n, temperature, top_p, max_tokens, stop, seed, logprobs,
  top_logprobs, plus ``extra`` (passed through, e.g. vLLM's ``repetition_penalty``).
  For completions, ``logprobs=True`` asks for ``top_logprobs`` alternatives per token (the
  legacy integer field); for chat it maps to ``logprobs: true, top_logprobs: k``.
- :meth:`LLMClient.complete` (``/v1/completions``; a prompt or a list of prompts, one HTTP
  request: micro-batching) and :meth:`LLMClient.chat` (``/v1/chat/completions``) return a
  :class:`Completion`: choices (``text``, ``prompt_index``, ``finish_reason``, per-token
  ``logprobs`` as :class:`TokenLogprob` with ``top`` alternatives), usage, endpoint, latency,
  attempts.
- ``deadline_s`` on each call is the caller's budget for the whole call, retries included; the
  caller may also wrap the call in ``asyncio.timeout`` (cancellation is always honoured).
- :attr:`LLMClient.max_model_len`: the served context (``max_model_len`` of vLLM's
  ``/v1/models`` card, the smallest over the ready endpoints; ``None`` when no server says).
  A call whose ``max_tokens`` exceeds it raises :class:`~.errors.LLMBadRequest` without
  sending: vLLM answers it with HTTP 400 every time.
- Stop strings: at most ``LLMConfig.max_stop_strings`` (4, vLLM's ``VLLM_MAX_STOP_STRINGS``
  default) go to the server; the rest are applied here, as evalplus does: each text is cut
  at the earliest of all stop strings (the server's stops and the local ones), and a cut
  choice gets ``finish_reason="stop"``. Logprobs are left as the server sent them.

Behaviour
---------
- Balancing: each request goes to the available endpoint with the fewest outstanding requests
  (in flight plus waiting for that endpoint's concurrency slot).
- Retries: :class:`~.errors.LLMRetryableError` subclasses (429, 5xx, 408, timeouts, connection
  errors) are retried up to ``max_retries`` times with full-jitter exponential backoff; a
  ``Retry-After`` header is honoured (the endpoint cools down that long; another endpoint may
  take the retry at once). A retry that would end past the deadline raises
  :class:`~.errors.LLMDeadlineExceeded` immediately instead of sleeping.
- Circuit breaker per endpoint: ``breaker_failures`` consecutive failures (5xx, timeouts,
  connection errors) open it for ``breaker_reset_s``; then one probe request is let through
  (half-open): success closes it, failure opens it again.
- Accounting: :meth:`LLMClient.stats` and Prometheus metrics (``codekiln_llm_*``, label
  ``endpoint``) for requests by outcome, tokens, latency, in-flight and circuit state.

Errors are typed (see :mod:`codekiln.synth.errors`, re-exported here).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import aiohttp
from prometheus_client import Counter, Gauge, Histogram

from .errors import (
    ConfigError,
    LLMAuthError,
    LLMBadRequest,
    LLMConnectionError,
    LLMDeadlineExceeded,
    LLMError,
    LLMFatalError,
    LLMProtocolError,
    LLMRateLimited,
    LLMRetriesExhausted,
    LLMRetryableError,
    LLMServerError,
    LLMTimeout,
    LLMUnavailable,
)

__all__ = [
    "Choice",
    "Completion",
    "EndpointStats",
    "LLMAuthError",
    "LLMBadRequest",
    "LLMClient",
    "LLMConfig",
    "LLMConnectionError",
    "LLMDeadlineExceeded",
    "LLMError",
    "LLMFatalError",
    "LLMProtocolError",
    "LLMRateLimited",
    "LLMRetriesExhausted",
    "LLMRetryableError",
    "LLMServerError",
    "LLMTimeout",
    "LLMUnavailable",
    "SamplingParams",
    "TokenLogprob",
    "Usage",
    "cut_at_stops",
    "normalize_base_url",
]

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


_PROBE_POLL_S = 0.05


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
        for name in ("max_concurrency_per_endpoint", "breaker_failures", "max_stop_strings"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"llm.{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ConfigError(f"llm.max_retries must be an integer >= 0, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise ConfigError(f"llm.max_retries must be an integer >= 0, got {self.max_retries!r}")
        for name in (
            "backoff_base_s",
            "backoff_max_s",
            "connect_timeout_s",
            "read_timeout_s",
            "breaker_reset_s",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"llm.{name} must be a number > 0, got {value!r}")


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


class _Endpoint:
    """Mutable per-endpoint state; only touched from the event loop thread."""

    __slots__ = (
        "base",
        "consecutive_failures",
        "cooling_until",
        "m_inflight",
        "open_until",
        "outstanding",
        "probing",
        "semaphore",
        "stats",
    )

    def __init__(self, base: str, cap: int) -> None:
        self.base = base
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
            return now + _PROBE_POLL_S  # a probe is in flight; check again soon
        return None


class LLMClient:
    """See the module docstring. Use as an async context manager."""

    def __init__(self, config: LLMConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self._endpoints = [
            _Endpoint(base, config.max_concurrency_per_endpoint) for base in config.endpoints
        ]
        self._model = config.model
        self._max_model_len: dict[str, int] = {}
        self._model_lock = asyncio.Lock()
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"Content-Type": "application/json"}
        if config.api_key:
            self._headers["Authorization"] = f"Bearer {config.api_key}"

    async def __aenter__(self) -> LLMClient:
        connector = aiohttp.TCPConnector(
            limit=self.config.max_concurrency_per_endpoint * len(self._endpoints) + 8,
            limit_per_host=0,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.config.connect_timeout_s,
                sock_read=self.config.read_timeout_s,
            ),
            headers=self._headers,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def model(self) -> str | None:
        return self._model

    @property
    def max_model_len(self) -> int | None:
        """The smallest served context over the endpoints that reported one, else ``None``."""
        return min(self._max_model_len.values(), default=None)

    def stats(self) -> dict[str, EndpointStats]:
        return {
            ep.base: EndpointStats(
                requests=ep.stats.requests,
                successes=ep.stats.successes,
                failures=dict(ep.stats.failures),
                prompt_tokens=ep.stats.prompt_tokens,
                completion_tokens=ep.stats.completion_tokens,
                latency_sum_s=ep.stats.latency_sum_s,
                latency_max_s=ep.stats.latency_max_s,
                circuit_opens=ep.stats.circuit_opens,
            )
            for ep in self._endpoints
        }

    # -- readiness ----------------------------------------------------------------------

    async def models(self, endpoint: str | None = None) -> list[str]:
        """Model ids served by ``endpoint`` (default: the first), from ``GET /v1/models``."""
        base = normalize_base_url(endpoint) if endpoint else self._endpoints[0].base
        session = self._require_session()
        try:
            async with session.get(f"{base}/v1/models") as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise _status_error(resp.status, text, base, resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc, base) from exc
        try:
            data = json.loads(text)["data"]
            ids = [str(item["id"]) for item in data]
            served = [item for item in data if self._model is None or item["id"] == self._model]
            lens = [item.get("max_model_len") for item in served[:1]]
            if lens and isinstance(lens[0], int) and not isinstance(lens[0], bool) and lens[0] > 0:
                self._max_model_len[base] = lens[0]
            return ids
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LLMProtocolError(f"bad /v1/models reply: {text[:200]!r}", endpoint=base) from exc

    async def tokenize(self, text: str, endpoint: str | None = None) -> list[int] | None:
        """Token ids of ``text`` from vLLM's ``POST /tokenize`` (no special tokens added);
        ``None`` when the server has no such route (404/405: not every OpenAI server does)."""
        base = normalize_base_url(endpoint) if endpoint else self._endpoints[0].base
        session = self._require_session()
        body = {"model": await self._ensure_model(), "prompt": text, "add_special_tokens": False}
        try:
            async with session.post(f"{base}/tokenize", data=json.dumps(body).encode()) as resp:
                raw = await resp.text()
                if resp.status in (404, 405):
                    return None
                if resp.status != 200:
                    raise _status_error(resp.status, raw, base, resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(exc, base) from exc
        try:
            return [int(t) for t in json.loads(raw)["tokens"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise LLMProtocolError(f"bad /tokenize reply: {raw[:200]!r}", endpoint=base) from exc

    async def wait_ready(self, timeout_s: float = 60.0, *, poll_s: float = 0.5) -> list[str]:
        """Wait until at least one endpoint lists a model; return the ready endpoints.

        Endpoints that are not ready when this returns start with an open circuit, so they get
        a probe after ``breaker_reset_s`` instead of failing live requests first.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        last: LLMError | None = None
        while True:
            results = await asyncio.gather(
                *(self.models(ep.base) for ep in self._endpoints), return_exceptions=True
            )
            ready: list[str] = []
            for ep, result in zip(self._endpoints, results, strict=True):
                if isinstance(result, list) and result:
                    ready.append(ep.base)
                    if self._model is None:
                        self._model = result[0]
                elif isinstance(result, LLMError):
                    last = result
                elif isinstance(result, BaseException):
                    raise result
            if ready:
                now = loop.time()
                for ep in self._endpoints:
                    if ep.base not in ready:
                        self._open_circuit(ep, now)
                return ready
            if loop.time() + poll_s > end:
                raise LLMDeadlineExceeded(
                    f"no LLM endpoint ready within {timeout_s}s "
                    f"({', '.join(ep.base for ep in self._endpoints)}): {last}"
                ) from last
            await asyncio.sleep(poll_s)

    # -- calls --------------------------------------------------------------------------

    async def complete(
        self,
        prompt: str | Sequence[str],
        params: SamplingParams | None = None,
        *,
        deadline_s: float | None = None,
    ) -> Completion:
        """``POST /v1/completions``; a list of prompts goes in one request."""
        params = params or SamplingParams()
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise LLMBadRequest("complete() needs at least one prompt", status=0)
        body = params.completion_body(self.config.max_stop_strings)
        body["prompt"] = prompts[0] if isinstance(prompt, str) else prompts
        out = await self._call("/v1/completions", body, params.n, deadline_s, chat=False)
        return _apply_local_stops(out, params.stop, self.config.max_stop_strings)

    async def chat(
        self,
        messages: Sequence[Mapping[str, str]],
        params: SamplingParams | None = None,
        *,
        deadline_s: float | None = None,
    ) -> Completion:
        """``POST /v1/chat/completions`` with one conversation."""
        params = params or SamplingParams()
        body = params.chat_body(self.config.max_stop_strings)
        body["messages"] = [dict(m) for m in messages]
        out = await self._call("/v1/chat/completions", body, params.n, deadline_s, chat=True)
        return _apply_local_stops(out, params.stop, self.config.max_stop_strings)

    # -- internals ----------------------------------------------------------------------

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("LLMClient must be used as 'async with LLMClient(config) as llm'")
        return self._session

    async def _ensure_model(self) -> str:
        if self._model is not None:
            return self._model
        async with self._model_lock:
            if self._model is None:
                await self.wait_ready(timeout_s=self.config.connect_timeout_s)
            assert self._model is not None  # wait_ready sets it or raises
            return self._model

    def _backoff_s(self, attempt: int) -> float:
        cap = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        return self._rng.uniform(0, cap)

    def _choose(self, now: float) -> tuple[_Endpoint | None, float, bool]:
        """The available endpoint with the fewest outstanding requests; else when to look
        again, and whether a half-open probe is in flight (its answer may come any moment)."""
        best: _Endpoint | None = None
        wake = float("inf")
        probing = False
        for ep in self._endpoints:
            later = ep.wake_time(now)
            if later is not None:
                wake = min(wake, later)
                probing = probing or ep.probing
                continue
            if best is None or ep.outstanding < best.outstanding:
                best = ep
        return best, wake, probing

    def _open_circuit(self, ep: _Endpoint, now: float) -> None:
        ep.open_until = now + self.config.breaker_reset_s
        ep.probing = False
        ep.stats.circuit_opens += 1
        _CIRCUIT.labels(ep.base).set(1)

    def _record_failure(self, ep: _Endpoint, exc: LLMError, now: float, probe: bool) -> None:
        kind = type(exc).__name__
        ep.stats.failures[kind] = ep.stats.failures.get(kind, 0) + 1
        _REQUESTS.labels(ep.base, kind).inc()
        if isinstance(exc, LLMRateLimited):
            # Overload, not breakage: cool down for the hinted time, leave the circuit alone.
            ep.cooling_until = max(ep.cooling_until, now + (exc.retry_after_s or 1.0))
            if probe:
                ep.probing = False
            return
        if isinstance(exc, LLMServerError | LLMConnectionError | LLMTimeout):
            ep.consecutive_failures += 1
            # Requests already in flight when the circuit opened do not re-open it.
            if probe or (
                not ep.open_until and ep.consecutive_failures >= self.config.breaker_failures
            ):
                self._open_circuit(ep, now)
            if exc.retry_after_s:
                ep.cooling_until = max(ep.cooling_until, now + exc.retry_after_s)
        elif probe:
            ep.probing = False

    async def _call(
        self, path: str, body: dict[str, Any], n: int, deadline_s: float | None, *, chat: bool
    ) -> Completion:
        loop = asyncio.get_running_loop()
        deadline = None if deadline_s is None else loop.time() + deadline_s
        if "model" not in body:
            body["model"] = await self._ensure_model()
        limit = self.max_model_len
        if limit is not None and body.get("max_tokens", 0) > limit:
            raise LLMBadRequest(
                f"max_tokens={body['max_tokens']} is more than the served context "
                f"max_model_len={limit}: the server refuses every such request",
                status=0,
            )
        payload = json.dumps(body).encode()
        attempts = 0
        while True:
            now = loop.time()
            if deadline is not None and now >= deadline:
                raise LLMDeadlineExceeded(f"deadline of {deadline_s}s passed before a reply")
            ep, wake, probing = self._choose(now)
            if ep is None and probing:
                # A probe decides whether the circuit closes: wait for it without spending an
                # attempt (the probe has its own timeouts, the caller its deadline).
                await asyncio.sleep(_PROBE_POLL_S)
                continue
            if ep is None:
                attempts += 1
                exc: LLMRetryableError = LLMUnavailable(
                    "every LLM endpoint is cooling down or has an open circuit",
                    retry_after_s=max(0.0, wake - now),
                )
            else:
                try:
                    return await self._attempt(
                        ep,
                        path,
                        payload,
                        n=n,
                        deadline=deadline,
                        chat=chat,
                        attempt_no=attempts + 1,
                    )
                except LLMRetryableError as retryable:
                    attempts += 1
                    exc = retryable
            if attempts > self.config.max_retries:
                raise LLMRetriesExhausted(
                    f"gave up after {attempts} attempts: {exc}", last=exc, attempts=attempts
                ) from exc
            delay = self._backoff_s(attempts)
            if isinstance(exc, LLMUnavailable):
                delay = max(delay, exc.retry_after_s or 0.0)
            elif exc.retry_after_s and self._choose(loop.time())[0] is None:
                delay = max(delay, exc.retry_after_s)
            if deadline is not None and loop.time() + delay >= deadline:
                raise LLMDeadlineExceeded(
                    f"next retry in {delay:.2f}s would pass the {deadline_s}s deadline; "
                    f"last error: {exc}",
                    endpoint=exc.endpoint,
                ) from exc
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        ep: _Endpoint,
        path: str,
        payload: bytes,
        *,
        n: int,
        deadline: float | None,
        chat: bool,
        attempt_no: int,
    ) -> Completion:
        loop = asyncio.get_running_loop()
        session = self._require_session()
        probe = bool(ep.open_until) and loop.time() >= ep.open_until
        if probe:
            ep.probing = True
        ep.outstanding += 1
        ep.m_inflight.inc()
        try:
            async with ep.semaphore:
                ep.stats.requests += 1
                start = loop.time()
                timeout = None
                if deadline is not None:
                    remaining = deadline - start
                    if remaining <= 0:
                        raise LLMDeadlineExceeded("deadline passed while queued for an endpoint")
                    timeout = aiohttp.ClientTimeout(
                        total=remaining,
                        sock_connect=self.config.connect_timeout_s,
                        sock_read=self.config.read_timeout_s,
                    )
                kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
                try:
                    async with session.post(ep.base + path, data=payload, **kwargs) as resp:
                        raw = await resp.read()
                        status = resp.status
                        headers = resp.headers
                except (aiohttp.ClientError, TimeoutError) as exc:
                    now = loop.time()
                    if deadline is not None and now >= deadline and isinstance(exc, TimeoutError):
                        raise LLMDeadlineExceeded(
                            "deadline passed during the request", endpoint=ep.base
                        ) from exc
                    err = _transport_error(exc, ep.base)
                    self._record_failure(ep, err, now, probe)
                    raise err from exc
                latency = loop.time() - start
                if status != 200:
                    failure = _status_error(
                        status, raw.decode("utf-8", "replace"), ep.base, headers
                    )
                    self._record_failure(ep, failure, loop.time(), probe)
                    raise failure
                try:
                    completion = _parse(
                        raw, n=n, chat=chat, base=ep.base, latency=latency, attempts=attempt_no
                    )
                except LLMProtocolError as bad:
                    self._record_failure(ep, bad, loop.time(), probe)
                    raise
        finally:
            ep.outstanding -= 1
            ep.m_inflight.dec()
            if probe:
                ep.probing = False
        self._record_success(ep, completion, latency)
        return completion

    def _record_success(self, ep: _Endpoint, completion: Completion, latency: float) -> None:
        ep.consecutive_failures = 0
        if ep.open_until:
            ep.open_until = 0.0
            _CIRCUIT.labels(ep.base).set(0)
        ep.probing = False
        stats = ep.stats
        stats.successes += 1
        stats.prompt_tokens += completion.usage.prompt_tokens
        stats.completion_tokens += completion.usage.completion_tokens
        stats.latency_sum_s += latency
        stats.latency_max_s = max(stats.latency_max_s, latency)
        _REQUESTS.labels(ep.base, "ok").inc()
        _LATENCY.labels(ep.base).observe(latency)
        if completion.usage.prompt_tokens:
            _TOKENS.labels(ep.base, "prompt").inc(completion.usage.prompt_tokens)
        if completion.usage.completion_tokens:
            _TOKENS.labels(ep.base, "completion").inc(completion.usage.completion_tokens)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _server_message(text: str) -> str:
    try:
        body = json.loads(text)
        err = body.get("error", body) if isinstance(body, dict) else body
        if isinstance(err, dict):
            return str(err.get("message") or err)[:500]
        return str(err)[:500]
    except ValueError:
        return text[:500]


def _status_error(status: int, text: str, base: str, headers: Mapping[str, str]) -> LLMError:
    message = f"HTTP {status} from {base}: {_server_message(text)}"
    if status == 429:
        return LLMRateLimited(message, endpoint=base, retry_after_s=_retry_after(headers))
    if status == 408 or status >= 500:
        return LLMServerError(
            message, status=status, endpoint=base, retry_after_s=_retry_after(headers)
        )
    if status in (401, 403):
        return LLMAuthError(message, status=status, endpoint=base)
    return LLMBadRequest(message, status=status, endpoint=base)


def _transport_error(exc: BaseException, base: str) -> LLMRetryableError:
    if isinstance(exc, TimeoutError):
        return LLMTimeout(f"timed out talking to {base}: {type(exc).__name__}", endpoint=base)
    return LLMConnectionError(f"connection to {base} failed: {exc!r}"[:500], endpoint=base)


def cut_at_stops(text: str, stops: Sequence[str]) -> str | None:
    """``text`` up to the earliest stop string, or ``None`` when none occurs."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return None if cut < 0 else text[:cut]


def _apply_local_stops(out: Completion, stop: Sequence[str], sent: int) -> Completion:
    """Apply the stop strings the server was not sent (see the module docstring)."""
    if len(stop) <= sent:
        return out
    choices = []
    for c in out.choices:
        cut = cut_at_stops(c.text, stop)
        choices.append(c if cut is None else replace(c, text=cut, finish_reason="stop"))
    return replace(out, choices=tuple(choices))


def _parse_logprobs(raw: Any, chat: bool) -> tuple[TokenLogprob, ...] | None:
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


def _parse(
    raw: bytes, *, n: int, chat: bool, base: str, latency: float, attempts: int
) -> Completion:
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
                    logprobs=_parse_logprobs(item.get("logprobs"), chat),
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
    return Completion(
        choices=tuple(choices),
        usage=usage,
        model=model,
        endpoint=base,
        latency_s=latency,
        attempts=attempts,
    )
