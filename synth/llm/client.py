"""The client: balancing over endpoints, retries with backoff inside the caller's deadline, the
served-model and context check, and the calls (see :mod:`codekiln.synth.llm` for the API)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp

from ..errors import (
    LLMBadRequest,
    LLMDeadlineExceeded,
    LLMError,
    LLMProtocolError,
    LLMRetriesExhausted,
    LLMRetryableError,
    LLMUnavailable,
)
from .config import LLMConfig, SamplingParams, normalize_base_url
from .endpoint import PROBE_POLL_S, Endpoint, EndpointStats
from .http_errors import status_error, transport_error
from .replies import Completion, parse_reply
from .stops import apply_local_stops

__all__ = ["LLMClient"]


class LLMClient:
    """See the module docstring. Use as an async context manager."""

    def __init__(self, config: LLMConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self._endpoints = [
            Endpoint(
                base,
                config.max_concurrency_per_endpoint,
                breaker_failures=config.breaker_failures,
                breaker_reset_s=config.breaker_reset_s,
            )
            for base in config.endpoints
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

    async def __aexit__(self, *exc_info: object) -> None:
        """Closes the session whatever ended the block (the exception, if any, propagates)."""
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
                    raise status_error(resp.status, text, base, resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(exc, base) from exc
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
                    raise status_error(resp.status, raw, base, resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(exc, base) from exc
        try:
            return [int(t) for t in json.loads(raw)["tokens"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise LLMProtocolError(f"bad /tokenize reply: {raw[:200]!r}", endpoint=base) from exc

    async def wait_ready(
        self,
        timeout_s: float = 60.0,
        *,
        poll_s: float = 0.5,
        on_wait: Callable[[str], None] | None = None,
        report_every_s: float = 10.0,
    ) -> list[str]:
        """Wait until at least one endpoint lists a model; return the ready endpoints.

        Endpoints that are not ready when this returns start with an open circuit, so they get
        a probe after ``breaker_reset_s`` instead of failing live requests first. ``on_wait``,
        when given, is told (one line) when the first poll finds none ready and again every
        ``report_every_s`` while waiting, so a wait for a server still loading its model is
        not silence.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + timeout_s
        last: LLMError | None = None
        reported: float | None = None
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
                        ep.open_circuit(now)
                return ready
            now = loop.time()
            if on_wait is not None and (reported is None or now - reported >= report_every_s):
                reported = now
                on_wait(
                    f"waiting for an LLM endpoint ({', '.join(ep.base for ep in self._endpoints)})"
                    f": {now - start:.0f} s of {timeout_s:.0f} s; last: {last}"
                )
            if now + poll_s > end:
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
        out = await self._call(
            "/v1/completions", body, params.n, deadline_s, chat=False, prompts=len(prompts)
        )
        return apply_local_stops(out, params.stop, self.config.max_stop_strings)

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
        out = await self._call(
            "/v1/chat/completions", body, params.n, deadline_s, chat=True, prompts=1
        )
        return apply_local_stops(out, params.stop, self.config.max_stop_strings)

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

    def _choose(self, now: float) -> tuple[Endpoint | None, float, bool]:
        """The available endpoint with the fewest outstanding requests; else when to look
        again, and whether a half-open probe is in flight (its answer may come any moment)."""
        best: Endpoint | None = None
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

    async def _call(
        self,
        path: str,
        body: dict[str, Any],
        n: int,
        deadline_s: float | None,
        *,
        chat: bool,
        prompts: int,
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
                await asyncio.sleep(PROBE_POLL_S)
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
                        prompts=prompts,
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
        ep: Endpoint,
        path: str,
        payload: bytes,
        *,
        n: int,
        prompts: int,
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
                    err = transport_error(exc, ep.base)
                    ep.record_failure(err, now, probe)
                    raise err from exc
                latency = loop.time() - start
                if status != 200:
                    failure = status_error(status, raw.decode("utf-8", "replace"), ep.base, headers)
                    ep.record_failure(failure, loop.time(), probe)
                    raise failure
                try:
                    completion = parse_reply(
                        raw,
                        n=n,
                        prompts=prompts,
                        chat=chat,
                        base=ep.base,
                        latency=latency,
                        attempts=attempt_no,
                    )
                except LLMProtocolError as bad:
                    ep.record_failure(bad, loop.time(), probe)
                    raise
        finally:
            ep.outstanding -= 1
            ep.m_inflight.dec()
            if probe:
                ep.probing = False
        ep.record_success(completion, latency)
        return completion
