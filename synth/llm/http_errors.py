"""An HTTP status or a transport failure as a typed :mod:`codekiln.synth.errors` error: the
type decides whether a call is retried (429, 408, 5xx, timeouts, connection errors) or not."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping

from ..errors import (
    LLMAuthError,
    LLMBadRequest,
    LLMConnectionError,
    LLMError,
    LLMRateLimited,
    LLMRetryableError,
    LLMServerError,
    LLMTimeout,
)

__all__ = ["status_error", "transport_error"]


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


def status_error(status: int, text: str, base: str, headers: Mapping[str, str]) -> LLMError:
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


def transport_error(exc: BaseException, base: str) -> LLMRetryableError:
    if isinstance(exc, TimeoutError):
        return LLMTimeout(f"timed out talking to {base}: {type(exc).__name__}", endpoint=base)
    # str, not repr: aiohttp's repr of a refused connection is 300 characters of ConnectionKey.
    return LLMConnectionError(
        f"connection to {base} failed: {type(exc).__name__}: {exc}"[:500], endpoint=base
    )
