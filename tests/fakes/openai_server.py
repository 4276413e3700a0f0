"""A fake OpenAI-compatible LLM server: a real aiohttp server on 127.0.0.1, port 0.

It speaks the subset of the OpenAI / vLLM protocol codekiln uses, checks every request it
receives (answering 400 and recording the problem in :attr:`FakeOpenAIServer.errors` for any
request a real vLLM would reject or that is malformed), and answers with scripted text and
logprobs. Use it wherever a test or benchmark needs an LLM (no real one can run in CI).

Usage::

    from tests.fakes.openai_server import FakeOpenAIServer, Reply

    async with FakeOpenAIServer(model="fake-coder") as server:
        server.url                                   # "http://127.0.0.1:PORT" (client base URL)
        server.script(Reply("first"), "second")      # FIFO: the next choices, one reply each
        server.route("Is this code", Reply("YES", top_logprobs=[{"YES": -0.1, "NO": -2.4}]))
        server.route(lambda prompt: "def " in prompt, lambda prompt, i: f"sample {i}")
        server.default = lambda prompt, i: "ok"      # when nothing above matches
        server.fail_next(2, status=429, retry_after_s=0.1)   # then 2 failures before replies
        ...
        server.requests                              # every request seen (ReceivedRequest)
        server.errors                                # validation failures; [] for a good client
        server.assert_clean()                        # raises AssertionError if any

Endpoints (each also under a mode prefix, e.g. ``server.mode_url("fail")``):

- ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``
- ``/slow/...``: every reply is delayed by ``slow_s`` seconds
- ``/ratelimit/...``: completions answer 429 with ``Retry-After: retry_after_s``
- ``/fail/...``: everything (models included) answers 500: an endpoint that is down

Server-wide knobs: ``latency_s`` (added to every completion), ``max_concurrency`` (requests
beyond it queue, as in vLLM's scheduler), ``api_key`` (``Authorization: Bearer`` required).

Replies: a :class:`Reply` or a plain string (its text). For completions with a prompt list and
``n``, choice ``i * n + j`` is the j-th sample of prompt i, as vLLM numbers them; a responder
callable gets ``(prompt_text, sample_index)``. ``top_logprobs`` scripts the alternatives per
generated token (the fake tokeniser splits text into words with their leading whitespace);
without it each token gets logprob 0 and itself as the only alternative. ``max_tokens`` and
``stop`` are applied to the text, with ``finish_reason`` ``length`` / ``stop``.

Run standalone (benchmarks): ``python -m tests.fakes.openai_server --latency-s 0.1
--max-concurrency 32`` prints ``READY http://127.0.0.1:PORT`` and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeOpenAIServer", "ReceivedRequest", "Reply"]

_TOKEN = re.compile(r"\s*\S+|\s+")
_MODES = ("", "slow", "ratelimit", "fail")
_COMMON_KEYS = {
    "model", "n", "temperature", "top_p", "max_tokens", "stop", "seed", "stream", "user",
    "presence_penalty", "frequency_penalty", "repetition_penalty", "top_k", "min_p",
}  # fmt: skip
_COMPLETION_KEYS = _COMMON_KEYS | {"prompt", "logprobs", "echo"}
_CHAT_KEYS = _COMMON_KEYS | {"messages", "logprobs", "top_logprobs"}
_ROLES = {"system", "user", "assistant", "tool"}
_MAX_LOGPROBS = 20  # vLLM's default --max-logprobs


@dataclass
class Reply:
    """One scripted choice (or, with a non-200 ``status``, one failed request)."""

    text: str = "ok"
    top_logprobs: list[dict[str, float]] | None = None
    finish_reason: str | None = None
    status: int = 200
    retry_after_s: float | None = None
    delay_s: float = 0.0


Responder = Callable[[str, int], "Reply | str"]
Matcher = Callable[[str], bool]


@dataclass
class ReceivedRequest:
    """A request as the server received it (``body`` is the decoded JSON, or None)."""

    method: str
    path: str
    mode: str
    body: Any
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


# vLLM's limits (0.32): at most 4 stop strings a request by default; max_tokens within the
# served context, which /v1/models reports.
MAX_STOP_STRINGS = 4
MAX_MODEL_LEN = 4096


def _contains(needle: str) -> Matcher:
    def matcher(prompt: str) -> bool:
        return needle in prompt

    return matcher


def _ok(prompt: str, index: int) -> str:
    return "ok"


def tokenize(text: str) -> list[str]:
    """The fake tokeniser: words with their leading whitespace."""
    return _TOKEN.findall(text)


class _Invalid(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(eq=False, kw_only=True)
class FakeOpenAIServer:
    """See the module docstring."""

    model: str = "fake-model"
    latency_s: float = 0.0
    max_concurrency: int | None = None
    slow_s: float = 2.0
    retry_after_s: float = 1.0
    api_key: str | None = None
    record_requests: bool = True
    requests: list[ReceivedRequest] = field(default_factory=list, init=False, repr=False)
    errors: list[str] = field(default_factory=list, init=False)
    # A factory: a function as a plain default would be a class attribute, bound as a method.
    default: Responder = field(default_factory=lambda: _ok, init=False, repr=False)
    served: int = field(default=0, init=False)  # completions answered with 200
    # generation requests being served now (after the concurrency cap), the most seen at once
    inflight: int = field(default=0, init=False)
    max_inflight: int = field(default=0, init=False)
    port: int = field(default=0, init=False)
    _semaphore: asyncio.Semaphore | None = field(default=None, init=False, repr=False)
    _script: deque[Reply | str] = field(default_factory=deque, init=False, repr=False)
    _routes: list[tuple[Matcher, Reply | str | Responder]] = field(
        default_factory=list, init=False, repr=False
    )
    _failures: deque[Reply] = field(default_factory=deque, init=False, repr=False)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)

    # -- scripting ----------------------------------------------------------------------

    def script(self, *replies: Reply | str) -> None:
        """Queue replies; each next generated choice takes one, before any route."""
        self._script.extend(replies)

    def route(self, match: str | Matcher, reply: Reply | str | Responder) -> None:
        """Answer prompts containing ``match`` (or for which ``match(prompt)`` is true)."""
        matcher = _contains(match) if isinstance(match, str) else match
        self._routes.append((matcher, reply))

    def fail_next(
        self, times: int, *, status: int = 500, retry_after_s: float | None = None
    ) -> None:
        """The next ``times`` completion requests fail with ``status`` (and Retry-After)."""
        for _ in range(times):
            self._failures.append(Reply(text="", status=status, retry_after_s=retry_after_s))

    def reset(self) -> None:
        """Forget scripts, routes, failures and the request log."""
        self._script.clear()
        self._routes.clear()
        self._failures.clear()
        self.requests.clear()
        self.errors.clear()
        self.served = 0
        self.max_inflight = 0

    def assert_clean(self) -> None:
        """Fail if any received request was invalid."""
        if self.errors:
            raise AssertionError(f"fake OpenAI server got invalid requests: {self.errors}")

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mode_url(self, mode: str) -> str:
        if mode not in _MODES:
            raise ValueError(f"unknown mode {mode!r}; modes: {_MODES[1:]}")
        return f"{self.url}/{mode}" if mode else self.url

    async def start(self) -> None:
        if self.max_concurrency:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for mode in _MODES:
            prefix = f"/{mode}" if mode else ""
            app.router.add_get(f"{prefix}/v1/models", self._models)
            app.router.add_post(f"{prefix}/v1/completions", self._completions)
            app.router.add_post(f"{prefix}/v1/chat/completions", self._chat)
        # Cancel a handler whose client went away (timeouts), as a real server stops generating.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server  # aiohttp exposes the bound port only here
        self.port = int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- handlers -----------------------------------------------------------------------

    @staticmethod
    def _mode(request: web.Request) -> str:
        first = request.path.strip("/").split("/", 1)[0]
        return first if first in _MODES else ""

    def _log(self, request: web.Request, body: Any) -> str:
        mode = self._mode(request)
        if self.record_requests:
            self.requests.append(
                ReceivedRequest(request.method, request.path, mode, body, dict(request.headers))
            )
        return mode

    def _check_auth(self, request: web.Request) -> None:
        expected = None if self.api_key is None else f"Bearer {self.api_key}"
        if expected is not None and request.headers.get("Authorization") != expected:
            raise _Invalid("missing or wrong Authorization: Bearer token", status=401)

    def _error(self, message: str, status: int, *, record: bool = True) -> web.Response:
        if record:
            self.errors.append(message)
        body = {"error": {"message": message, "type": "BadRequestError", "code": status}}
        return web.json_response(body, status=status)

    async def _models(self, request: web.Request) -> web.Response:
        mode = self._log(request, None)
        if mode == "fail":
            return self._error("endpoint is down (fail mode)", 500, record=False)
        try:
            self._check_auth(request)
        except _Invalid as exc:
            return self._error(str(exc), exc.status)
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": self.model, "object": "model", "owned_by": "codekiln-fake",
                     "max_model_len": MAX_MODEL_LEN}
                ],
            }
        )  # fmt: skip

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def _generate(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        mode = self._log(request, body)
        if mode == "fail":
            return self._error("internal server error (fail mode)", 500, record=False)
        if mode == "ratelimit":
            resp = self._error("rate limited (ratelimit mode)", 429, record=False)
            resp.headers["Retry-After"] = f"{self.retry_after_s:g}"
            return resp
        try:
            self._check_auth(request)
            if request.content_type != "application/json":
                raise _Invalid(f"Content-Type must be application/json, got {request.content_type}")
            if body is None:
                raise _Invalid("request body is not valid JSON")
            prompts = _validate(body, chat, self.model)
        except _Invalid as exc:
            return self._error(str(exc), exc.status)
        if self._failures:
            failure = self._failures.popleft()
            resp = self._error(f"scripted failure {failure.status}", failure.status, record=False)
            if failure.retry_after_s is not None:
                resp.headers["Retry-After"] = f"{failure.retry_after_s:g}"
            return resp
        n = int(body.get("n", 1))
        replies = [(p, self._next_reply(prompt, j)) for p, prompt in enumerate(prompts)
                   for j in range(n)]  # fmt: skip
        first = replies[0][1]
        if first.status != 200:
            resp = self._error(f"scripted failure {first.status}", first.status, record=False)
            if first.retry_after_s is not None:
                resp.headers["Retry-After"] = f"{first.retry_after_s:g}"
            return resp
        delay = self.latency_s + max(r.delay_s for _, r in replies)
        if mode == "slow":
            delay += self.slow_s
        if self._semaphore is not None:
            async with self._semaphore:
                await self._work(delay)
        else:
            await self._work(delay)
        self.served += 1
        return web.json_response(self._render(body, prompts, replies, chat))

    async def _work(self, delay: float) -> None:
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await asyncio.sleep(delay)
        finally:
            self.inflight -= 1

    def _next_reply(self, prompt: str, index: int) -> Reply:
        chosen: Reply | str | Responder | None = None
        if self._script:
            chosen = self._script.popleft()
        else:
            for matcher, reply in self._routes:
                if matcher(prompt):
                    chosen = reply
                    break
        if chosen is None:
            chosen = self.default
        if callable(chosen) and not isinstance(chosen, Reply):
            chosen = chosen(prompt, index)
        return Reply(text=chosen) if isinstance(chosen, str) else chosen

    def _render(
        self, body: dict[str, Any], prompts: list[str], replies: list[tuple[int, Reply]], chat: bool
    ) -> dict[str, Any]:
        max_tokens = int(body.get("max_tokens") or 16)
        stop = body.get("stop") or []
        stops = [stop] if isinstance(stop, str) else list(stop)
        if chat:
            want_lp = bool(body.get("logprobs"))
            k = int(body.get("top_logprobs") or 0)
        else:
            want_lp = body.get("logprobs") is not None
            k = int(body.get("logprobs") or 0)
        choices = []
        completion_tokens = 0
        for index, (_, reply) in enumerate(replies):
            text, finish = reply.text, "stop"
            cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
            tokens = tokenize(text)
            if len(tokens) > max_tokens:
                tokens, finish = tokens[:max_tokens], "length"
                text = "".join(tokens)
            completion_tokens += len(tokens)
            choice: dict[str, Any] = {
                "index": index,
                "finish_reason": reply.finish_reason or finish,
            }
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            lp = _logprobs(tokens, reply.top_logprobs, k, chat) if want_lp else None
            choice["logprobs"] = lp
            choices.append(choice)
        prompt_tokens = sum(len(tokenize(p)) for p in prompts)
        return {
            "id": f"cmpl-fake-{self.served}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _logprobs(
    tokens: list[str], scripted: list[dict[str, float]] | None, k: int, chat: bool
) -> dict[str, Any]:
    per_token: list[tuple[str, float, list[tuple[str, float]]]] = []
    for i, tok in enumerate(tokens):
        alts = dict(scripted[i]) if scripted and i < len(scripted) else {tok: 0.0}
        lp = alts.get(tok, max(alts.values()))
        ranked = sorted(alts.items(), key=lambda kv: -kv[1])[:k]
        per_token.append((tok, lp, ranked))
    if chat:
        return {
            "content": [
                {
                    "token": tok,
                    "logprob": lp,
                    "bytes": list(tok.encode()),
                    "top_logprobs": [
                        {"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in ranked
                    ],
                }
                for tok, lp, ranked in per_token
            ]
        }
    offsets, pos = [], 0
    for tok in tokens:
        offsets.append(pos)
        pos += len(tok)
    return {
        "tokens": tokens,
        "token_logprobs": [lp for _, lp, _ in per_token],
        # vLLM includes the sampled token among the alternatives.
        "top_logprobs": [dict([*ranked, (tok, lp)]) for tok, lp, ranked in per_token],
        "text_offset": offsets,
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _validate(body: Any, chat: bool, model: str) -> list[str]:
    """Check a request as vLLM would; return the prompt texts (one for chat)."""
    if not isinstance(body, dict):
        raise _Invalid("request body must be a JSON object")
    allowed = _CHAT_KEYS if chat else _COMPLETION_KEYS
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _Invalid(f"unknown field(s): {', '.join(unknown)}")
    if body.get("model") != model:
        raise _Invalid(f"The model `{body.get('model')}` does not exist.", status=404)
    if body.get("stream"):
        raise _Invalid("stream=true is not supported by the fake server")
    n = body.get("n", 1)
    if not _is_int(n) or not 1 <= n <= 128:
        raise _Invalid(f"n must be an integer in 1..128, got {n!r}")
    temperature = body.get("temperature", 1.0)
    if not _is_number(temperature) or not 0 <= temperature <= 2:
        raise _Invalid(f"temperature must be a number in [0, 2], got {temperature!r}")
    top_p = body.get("top_p", 1.0)
    if not _is_number(top_p) or not 0 < top_p <= 1:
        raise _Invalid(f"top_p must be a number in (0, 1], got {top_p!r}")
    max_tokens = body.get("max_tokens", 16)
    if not _is_int(max_tokens) or max_tokens < 1:
        raise _Invalid(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise _Invalid(f"stop must be a string or a list of strings, got {stop!r}")
    if isinstance(stop, list) and len(stop) > MAX_STOP_STRINGS:
        # as vLLM (VLLM_MAX_STOP_STRINGS); tests/synth/test_vllm.py shows the real refusal
        raise _Invalid(f"stop: list should have at most {MAX_STOP_STRINGS} items, not {len(stop)}")
    if _is_int(max_tokens) and max_tokens > MAX_MODEL_LEN:
        raise _Invalid(
            f"max_tokens={max_tokens} cannot be greater than max_model_len={MAX_MODEL_LEN}"
        )
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise _Invalid(f"seed must be an integer, got {seed!r}")
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Invalid("messages must be a non-empty list")
        for i, message in enumerate(messages):
            if (
                not isinstance(message, dict)
                or message.get("role") not in _ROLES
                or not isinstance(message.get("content"), str)
                or set(message) - {"role", "content", "name"}
            ):
                raise _Invalid(f"messages[{i}] must be {{role, content}} with a known role")
        logprobs = body.get("logprobs", False)
        if not isinstance(logprobs, bool):
            raise _Invalid(f"logprobs must be a boolean for chat, got {logprobs!r}")
        top = body.get("top_logprobs")
        if top is not None:
            if not _is_int(top) or not 0 <= top <= _MAX_LOGPROBS:
                raise _Invalid(f"top_logprobs must be an integer in 0..20, got {top!r}")
            if not logprobs:
                raise _Invalid("top_logprobs requires logprobs=true")
        return ["\n".join(m["content"] for m in messages)]
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    else:
        raise _Invalid("prompt must be a string or a non-empty list of strings")
    logprobs = body.get("logprobs")
    if logprobs is not None and (not _is_int(logprobs) or not 0 <= logprobs <= _MAX_LOGPROBS):
        raise _Invalid(f"logprobs must be an integer in 0..20 for completions, got {logprobs!r}")
    return prompts


async def _serve(args: argparse.Namespace) -> None:
    server = FakeOpenAIServer(
        model=args.model,
        latency_s=args.latency_s,
        max_concurrency=args.max_concurrency or None,
        record_requests=False,
    )
    server.default = lambda prompt, index: args.text
    await server.start()
    print(f"READY {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server on 127.0.0.1:0")
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--max-concurrency", type=int, default=0)
    parser.add_argument("--text", default="ok")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
