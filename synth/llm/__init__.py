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
  circuit-breaker settings. Frozen; validated on construction (:class:`ConfigError`).
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
  A call whose ``max_tokens`` exceeds it raises :class:`LLMBadRequest` without
  sending: vLLM answers it with HTTP 400 every time.
- Stop strings: at most ``LLMConfig.max_stop_strings`` (4, vLLM's ``VLLM_MAX_STOP_STRINGS``
  default) go to the server; the rest are applied here, as evalplus does: each text is cut
  at the earliest of all stop strings (the server's stops and the local ones), and a cut
  choice gets ``finish_reason="stop"``. Logprobs are left as the server sent them.

Behaviour
---------
- Balancing: each request goes to the available endpoint with the fewest outstanding requests
  (in flight plus waiting for that endpoint's concurrency slot).
- Retries: :class:`LLMRetryableError` subclasses (429, 5xx, 408, timeouts, connection
  errors) are retried up to ``max_retries`` times with full-jitter exponential backoff; a
  ``Retry-After`` header is honoured (the endpoint cools down that long; another endpoint may
  take the retry at once). A retry that would end past the deadline raises
  :class:`LLMDeadlineExceeded` immediately instead of sleeping.
- Circuit breaker per endpoint: ``breaker_failures`` consecutive failures (5xx, timeouts,
  connection errors) open it for ``breaker_reset_s``; then one probe request is let through
  (half-open): success closes it, failure opens it again.
- Accounting: :meth:`LLMClient.stats` and Prometheus metrics (``codekiln_llm_*``, label
  ``endpoint``) for requests by outcome, tokens, latency, in-flight and circuit state.

Errors are typed (see :mod:`codekiln.synth.errors`, re-exported here).

Modules
-------
:mod:`.config` (settings and request bodies), :mod:`.client` (balancing, retries, the served
context check, the calls), :mod:`.endpoint` (per-endpoint circuit breaker, totals, metrics),
:mod:`.http_errors` (status and transport failures as typed errors), :mod:`.replies` (the
returned objects and reply parsing), :mod:`.stops` (stop strings applied by the client).
"""

from ..errors import (
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
from .client import LLMClient
from .config import LLMConfig, SamplingParams, normalize_base_url
from .endpoint import EndpointStats
from .replies import Choice, Completion, TokenLogprob, Usage
from .stops import cut_at_stops

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
