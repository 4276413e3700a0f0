"""The client's error mapping against tiny real aiohttp servers on port 0 (no engine needed)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from codekiln.sandbox import ClientError, Overloaded, ProtocolError, ServiceUnavailable
from codekiln.sandbox.client import RunRequest, SandboxClient

from tests.fixtures.http import serving

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serve(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/run", handler)
    async with serving(app) as url:
        yield url


@pytest.fixture
async def always_429() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": "full"}, status=429, headers={"Retry-After": "0"})

    async for url in _serve(handler):
        yield url


@pytest.fixture
async def not_json() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="<html>proxy error</html>", content_type="text/html")

    async for url in _serve(handler):
        yield url


REQ = RunRequest(language="python", code="print(1)")


async def test_unreachable_service_is_service_unavailable() -> None:
    """Nothing listening: ServiceUnavailable after the retries."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with SandboxClient(f"http://127.0.0.1:{port}", token="t" * 20, retries=1) as client:
        with pytest.raises(ServiceUnavailable):
            await client.run(REQ)


async def test_persistent_429_raises_overloaded(always_429: str) -> None:
    """A queue that stays full raises Overloaded once the retries are spent."""
    async with SandboxClient(always_429, token="t" * 20, retries=2) as client:
        with pytest.raises(Overloaded):
            await client.run(REQ)


async def test_non_json_answer_is_protocol_error(not_json: str) -> None:
    """A 200 that is not JSON is a ProtocolError, not a crash."""
    async with SandboxClient(not_json, token="t" * 20) as client:
        with pytest.raises(ProtocolError):
            await client.run(REQ)


async def test_use_outside_context_manager_is_an_error() -> None:
    """Calling run() before 'async with' raises a ClientError with a clear message."""
    client = SandboxClient("http://127.0.0.1:1")
    with pytest.raises(ClientError, match="outside 'async with'"):
        await client.run(REQ)
