"""Async client of the sandbox execution API; what synth and eval use.

    async with SandboxClient(url, token=token) as sb:
        result = await sb.run(RunRequest(language="python", code="print(1)"))

Timeouts are on by default (connect 10 s, whole call ``call_timeout_s``). A full queue (429) and
transient failures (connection refused, 5xx) are retried ``retries`` times, honouring
Retry-After; everything else raises at once. Errors are the ClientError subtree of
codekiln.sandbox.errors.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import Sequence
from typing import Any

import aiohttp

from .errors import (
    AuthError,
    ClientError,
    Overloaded,
    ProtocolError,
    RequestInvalid,
    ServiceUnavailable,
)
from .models import RunRequest, RunResult, TestVerdict

__all__ = ["RunRequest", "RunResult", "SandboxClient", "TestVerdict"]


class SandboxClient:
    """An async HTTP client of one sandbox service; use it as an async context manager."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        call_timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        retries: int = 5,
        max_connections: int = 64,
        batch_size: int = 256,
    ) -> None:
        self._url = url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(
            total=call_timeout_s, connect=connect_timeout_s, sock_connect=connect_timeout_s
        )
        self._retries = retries
        self._max_connections = max_connections
        # Requests per /v1/run/batch call; longer lists are sent as several calls, in order.
        self._batch_size = batch_size
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxClient:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            headers=headers,
            connector=aiohttp.TCPConnector(limit=self._max_connections),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()  # the session closes alike whether or not the block raised

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, request: RunRequest) -> RunResult:
        """Run one request and return its result."""
        body = await self._post("/v1/run", request.to_json())
        return _result(body)

    async def run_batch(self, requests: Sequence[RunRequest]) -> list[RunResult]:
        """Run several requests (concurrently on the service); results keep the input order."""
        results: list[RunResult] = []
        for start in range(0, len(requests), self._batch_size):
            chunk = requests[start : start + self._batch_size]
            body = await self._post("/v1/run/batch", [r.to_json() for r in chunk])
            if not isinstance(body, list) or len(body) != len(chunk):
                raise ProtocolError("batch answer is not a list of the request's length")
            results += [_result(b) for b in body]
        return results

    async def health(self) -> dict[str, Any]:
        """GET /healthz (no token needed)."""
        session = self._require_session()
        try:
            async with session.get(self._url + "/healthz") as resp:
                if resp.status != 200:
                    raise ServiceUnavailable(f"healthz answered {resp.status}")
                data: dict[str, Any] = await resp.json()
                return data
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceUnavailable(f"healthz failed: {exc!r}") from exc

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise ClientError("SandboxClient used outside 'async with'")
        return self._session

    async def _post(self, path: str, payload: Any) -> Any:
        session = self._require_session()
        attempt = 0
        while True:
            try:
                return await self._post_once(session, path, payload)
            except (Overloaded, ServiceUnavailable) as exc:
                attempt += 1
                if attempt > self._retries:
                    raise
                delay = (
                    exc.retry_after_s if isinstance(exc, Overloaded) else min(0.1 * 2**attempt, 5.0)
                )
                # Jitter keeps many clients from retrying in lockstep.
                await asyncio.sleep(delay * (1.0 + random.random() * 0.5))

    async def _post_once(self, session: aiohttp.ClientSession, path: str, payload: Any) -> Any:
        # A stream, not bytes: aiohttp warns that big raw bodies may block the loop.
        body = io.BytesIO(json.dumps(payload).encode())
        headers = {"Content-Type": "application/json"}
        try:
            async with session.post(self._url + path, data=body, headers=headers) as resp:
                if resp.status == 200:
                    try:
                        return await resp.json()
                    except (aiohttp.ContentTypeError, ValueError) as exc:
                        raise ProtocolError(f"{path}: answer is not JSON") from exc
                text = await resp.text()
                if resp.status == 401:
                    raise AuthError(f"{path}: token refused")
                if resp.status == 429:
                    retry_after = _float(resp.headers.get("Retry-After"), 1.0)
                    raise Overloaded(f"{path}: queue full", retry_after)
                if resp.status in (400, 413, 422):
                    raise RequestInvalid(f"{path}: {_message(text)}")
                if resp.status >= 500:
                    raise ServiceUnavailable(f"{path}: {resp.status} {_message(text)}")
                raise ProtocolError(f"{path}: unexpected status {resp.status}: {_message(text)}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Connection refused/reset, a cut-off body, a timeout: the service may come back.
            raise ServiceUnavailable(f"{path}: {exc!r}") from exc


def _result(body: Any) -> RunResult:
    if not isinstance(body, dict):
        raise ProtocolError("run answer is not a JSON object")
    try:
        return RunResult.from_json(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed run answer: {exc}") from exc


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


def _message(text: str) -> str:
    return text[:500]
