"""The execution API (aiohttp).

Routes: POST /v1/run, POST /v1/run/batch, POST /run_code (SandboxFusion-compatible, also as
POST /t/<token>/run_code for clients that can only be given a URL), GET /healthz,
GET /metrics (Prometheus), GET /openapi.json. Runs need a token (constant-time compare);
health, metrics and the schema do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import sandboxfusion
from ._engine import Engine
from ._pool import Pool
from .config import SandboxConfig
from .errors import ImageError, RequestInvalid
from .languages import LANGUAGES, Language, resolve
from .metrics import Metrics
from .models import RunRequest, RunResult
from .openapi import openapi_spec

log = logging.getLogger("codekiln.sandbox.server")

CONFIG = web.AppKey("config", SandboxConfig)
METRICS = web.AppKey("metrics", Metrics)
OPEN_PATHS = frozenset({"/healthz", "/metrics", "/openapi.json"})
# SandboxFusion's client appends "/run_code" to its endpoint, so the endpoint
# http://host:port/t/<token> carries the token. ".+": a base64 token may hold "/".
PATH_TOKEN_ROUTE = "/t/{token:.+}/run_code"
PATH_TOKEN_LOGGED = "/t/<token>/run_code"
# Weight of the newest run in the recent run time (Retry-After's estimate).
RUN_TIME_WEIGHT = 0.3

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServiceState:
    def __init__(self, config: SandboxConfig) -> None:
        self.pool: Pool | None = None
        # Results of batch runs held by the service (running, or waiting to be sent in
        # order): bounds the service's memory whatever the batches' outputs.
        self.held = asyncio.Semaphore(config.results_held)
        self.held_now = 0  # how many of those are taken (health reports it)
        self.pending = 0
        # Recent run time (admission to result), exponentially weighted: Retry-After.
        # Starts at a trivial run's.
        self.run_s_avg = 0.05
        self.started_at = time.time()


STATE = web.AppKey("state", ServiceState)


def log_event(event: str, **fields: Any) -> None:
    """One JSON line per event: machine-readable, with the request id when there is one."""
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    log.info(json.dumps(record, default=str))


def _error(status: int, message: str, request: web.Request, **headers: str) -> web.Response:
    return web.json_response(
        {"error": message, "request_id": request.get("request_id", "")},
        status=status,
        headers=headers,
    )


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    request["request_id"] = rid
    # Never log a token carried in the path.
    path = PATH_TOKEN_LOGGED if "token" in request.match_info else request.path
    t0 = time.monotonic()
    status = 500
    try:
        if request.path not in OPEN_PATHS and not _authorised(request):
            response: web.StreamResponse = _error(401, "missing or wrong bearer token", request)
        else:
            response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        route_name = route.canonical if route is not None else "unmatched"
        request.app[METRICS].http.labels(route_name, str(status)).inc()
        log_event(
            "request",
            request_id=rid,
            method=request.method,
            path=path,
            status=status,
            duration_ms=round((time.monotonic() - t0) * 1000, 2),
            runs=request.get("runs", 0),
        )
    response.headers["X-Request-Id"] = rid
    return response


def _authorised(request: web.Request) -> bool:
    config = request.app[CONFIG]
    expected = config.token.encode()
    if "token" in request.match_info:
        # /t/<token>/run_code: the token is the path's (the route exists only when allowed).
        given = request.match_info["token"].encode("utf-8", errors="replace")
        return hmac.compare_digest(given, expected)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    # compare_digest runs in time independent of where the strings differ.
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except web.HTTPRequestEntityTooLarge:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestInvalid(f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        # The decoder recurses per nesting level; no request of ours nests more than 3 deep.
        raise RequestInvalid("body is not valid JSON: nested too deeply") from exc


def check_caps(req: RunRequest, config: SandboxConfig) -> Language:
    lang = resolve(req.language)
    if req.timeout_s > config.max_timeout_s:
        raise RequestInvalid(f"timeout_s {req.timeout_s} exceeds the cap of {config.max_timeout_s}")
    if req.memory_mb > config.max_memory_mb:
        raise RequestInvalid(f"memory_mb {req.memory_mb} exceeds the cap of {config.max_memory_mb}")
    if req.memory_mb < lang.min_memory_mb:
        raise RequestInvalid(
            f"memory_mb must be at least {lang.min_memory_mb} for {lang.name} (its compiler or "
            "runtime needs that much)"
        )
    size = len(req.code) + len(req.tests or "") + len(req.stdin)
    size += sum(len(k) + len(v) for k, v in req.files.items())
    if size > config.max_code_bytes:
        raise RequestInvalid(
            f"code, tests, stdin and files total {size} bytes, over the cap of "
            f"{config.max_code_bytes}"
        )
    if len(req.files) > 100:
        raise RequestInvalid("at most 100 files per run")
    if req.files and lang.source_name in req.files:
        raise RequestInvalid(f"files must not replace the program's own file {lang.source_name}")
    return lang


class _Admission:
    """Counts admitted runs; refuses (429) beyond pool size plus queue bound."""

    def __init__(self, app: web.Application, n: int) -> None:
        self._state = app[STATE]
        self._config = app[CONFIG]
        self._metrics = app[METRICS]
        self._n = n

    def __enter__(self) -> None:
        capacity = self._config.pool_size + self._config.max_queue
        if self._state.pending + self._n > capacity:
            self._metrics.rejected.inc(self._n)
            # A run admitted now would take about what recent runs took from admission to
            # result (the queue they waited in included): under slow or hostile work, runs
            # that take their whole limit, the client is told to wait longer.
            wait = max(1, math.ceil(self._state.run_s_avg))
            raise _Overloaded(min(wait, 30))
        self._state.pending += self._n
        self._metrics.queue_depth.set(self._state.pending)

    def __exit__(self, *exc: object) -> None:
        self._state.pending -= self._n
        self._metrics.queue_depth.set(self._state.pending)


class _Overloaded(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"queue full; retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


async def _run_one(app: web.Application, req: RunRequest, lang: Language) -> RunResult:
    pool = app[STATE].pool
    if pool is None:
        return RunResult.error("sandbox pool is not running")
    t0 = time.monotonic()
    result = await pool.run(req, lang)
    metrics = app[METRICS]
    metrics.runs.labels(lang.name, result.status).inc()
    elapsed = time.monotonic() - t0
    metrics.run_seconds.observe(elapsed)
    state = app[STATE]
    state.run_s_avg += RUN_TIME_WEIGHT * (elapsed - state.run_s_avg)
    return result


async def _handle_single(
    request: web.Request,
    parse: Callable[[Any], RunRequest],
    render: Callable[[RunResult, Language], Any],
) -> web.Response:
    """One run through admission: ``parse`` reads the body, ``render`` shapes the answer."""
    try:
        req = parse(await _json_body(request))
        lang = check_caps(req, request.app[CONFIG])
    except RequestInvalid as exc:
        return _error(400, str(exc), request)
    request["runs"] = 1
    try:
        with _Admission(request.app, 1):
            result = await _run_one(request.app, req, lang)
    except _Overloaded as exc:
        return _error(429, str(exc), request, **{"Retry-After": str(exc.retry_after_s)})
    return _json_utf8(render(result, lang))


async def handle_run(request: web.Request) -> web.Response:
    return await _handle_single(
        request, RunRequest.from_json, lambda result, _lang: result.to_json()
    )


async def handle_batch(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    try:
        body = await _json_body(request)
        if not isinstance(body, list):
            raise RequestInvalid("batch body must be a JSON list of run requests")
        if len(body) > config.max_batch:
            raise RequestInvalid(f"batch of {len(body)} exceeds the cap of {config.max_batch}")
        reqs = []
        for i, item in enumerate(body):
            try:
                req = RunRequest.from_json(item)
                reqs.append((req, check_caps(req, config)))
            except RequestInvalid as exc:
                raise RequestInvalid(f"item {i}: {exc}") from exc
    except RequestInvalid as exc:
        return _error(400, str(exc), request)
    del body
    request["runs"] = len(reqs)
    if not reqs:
        return web.json_response([])
    # A batch holds at most pool_size admission slots and runs that many items at once: a big
    # batch then cannot starve single runs, and is never larger than the queue can admit.
    width = min(len(reqs), config.pool_size)
    try:
        with _Admission(request.app, width):
            return await _stream_batch(request, reqs, width)
    except _Overloaded as exc:
        return _error(429, str(exc), request, **{"Retry-After": str(exc.retry_after_s)})


def encode_json(obj: Any) -> bytes:
    """UTF-8 JSON, not ASCII-escaped: a run's binary output decodes to U+FFFD, 3 bytes here
    against 6 as an escape."""
    try:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from the container: escape it
        return json.dumps(obj).encode("ascii")


def encode_result(result: RunResult) -> bytes:
    return encode_json(result.to_json())


def _json_utf8(obj: Any) -> web.Response:
    return web.Response(body=encode_json(obj), content_type="application/json", charset="utf-8")


async def _stream_batch(
    request: web.Request, reqs: list[tuple[RunRequest, Language]], width: int
) -> web.StreamResponse:
    """Run a batch and stream its JSON list out in input order, each result sent (and freed)
    as soon as every earlier one is. Memory: a batch holds at most ``2 * width`` results
    (started, running or waiting for an earlier one), and the whole service at most
    ``config.results_held`` (STATE.held), so no request, however large its outputs, grows the
    service beyond that many results (each at most twice the output cap, plus its JSON)."""
    app = request.app
    state = app[STATE]
    held = state.held
    gate = asyncio.Semaphore(width)
    # Bound: the lookahead past the oldest unsent result (see the docstring).
    window = asyncio.Semaphore(2 * width)
    loop = asyncio.get_running_loop()
    done: list[asyncio.Future[bytes] | None] = [loop.create_future() for _ in reqs]
    acquired = 0
    sent = 0

    async def one(i: int, r: RunRequest, lang: Language) -> None:
        async with gate:
            result = await _run_one(app, r, lang)
        fut = done[i]
        if fut is not None:
            fut.set_result(encode_result(result))

    async def start_in_order(tg: asyncio.TaskGroup) -> None:
        nonlocal acquired
        for i, (r, lang) in enumerate(reqs):
            await window.acquire()
            await held.acquire()
            acquired += 1
            state.held_now += 1
            tg.create_task(one(i, r, lang))

    response = web.StreamResponse(
        headers={
            "Content-Type": "application/json; charset=utf-8",
            # Sent before the middleware sees the response: it sets this one too late.
            "X-Request-Id": request.get("request_id", ""),
        }
    )
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(start_in_order(tg))
            await response.prepare(request)
            for i, fut in enumerate(done):
                assert fut is not None
                data = await fut
                done[i] = None  # the result's memory goes once it is sent
                await response.write((b"[" if i == 0 else b",") + data)
                del data
                sent += 1
                held.release()
                state.held_now -= 1
                window.release()
            await response.write(b"]")
    finally:
        for _ in range(acquired - sent):
            held.release()
            state.held_now -= 1
    await response.write_eof()
    return response


async def handle_run_code(request: web.Request) -> web.Response:
    return await _handle_single(request, sandboxfusion.to_run_request, sandboxfusion.to_response)


async def handle_health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    pool = state.pool
    live = pool.live if pool else 0
    body = {
        "status": "ok" if live > 0 else "degraded",
        "containers": live,
        "idle": pool.idle if pool else 0,
        "spares": pool.spares if pool else 0,
        "pending": state.pending,
        "batch_results_held": state.held_now,
        "languages": sorted(LANGUAGES),
        "uptime_s": round(time.time() - state.started_at, 1),
    }
    return web.json_response(body, status=200 if live > 0 else 503)


async def handle_metrics(request: web.Request) -> web.Response:
    data = generate_latest(request.app[METRICS].registry)
    resp = web.Response(body=data)
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


async def handle_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_spec())


def _pool_context(image: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        engine = await asyncio.to_thread(Engine, config, image)
        try:
            if not await asyncio.to_thread(engine.image_present):
                raise ImageError(
                    f"sandbox image {image} is missing: run 'codekiln-sandbox image build'"
                )
            async with Pool(config, engine, app[METRICS]) as pool:
                app[STATE].pool = pool
                log_event("pool_ready", containers=pool.live, image=image)
                try:
                    yield
                finally:
                    app[STATE].pool = None
        finally:
            engine.close()

    return ctx


def make_app(config: SandboxConfig, image: str | None = None) -> web.Application:
    if image is None:
        from .image.build import default_recipe

        image = config.image or default_recipe().tag
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[request_context])
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app[STATE] = ServiceState(config)
    app.cleanup_ctx.append(_pool_context(image))
    app.router.add_post("/v1/run", handle_run)
    app.router.add_post("/v1/run/batch", handle_batch)
    app.router.add_post("/run_code", handle_run_code)
    if config.token_in_path:
        app.router.add_post(PATH_TOKEN_ROUTE, handle_run_code)
    app.router.add_get("/healthz", handle_health)
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/openapi.json", handle_openapi)
    return app


async def _serve(config: SandboxConfig, host: str, port: int, ready_file: Path | None) -> None:
    app = make_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        addresses = runner.addresses
        bound_port = addresses[0][1] if addresses else port
        url = f"http://{host}:{bound_port}"
        log_event("listening", url=url)
        if ready_file is not None:
            tmp = ready_file.with_suffix(".tmp")
            tmp.write_text(url)
            tmp.rename(ready_file)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(
    config: SandboxConfig,
    host: str = "127.0.0.1",
    port: int = 8080,
    ready_file: Path | None = None,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    asyncio.run(_serve(config, host, port, ready_file))
