"""The errors of ``codekiln.synth``: one root, retryable vs fatal decided by type.

::

    SynthError
    ├── ConfigError                    bad configuration (exact message, raised before any work)
    ├── PromptError                    a prompt data file is missing or malformed
    ├── ParseError                     a model output failed its prompt's validating parser
    ├── ExecutionError                 the sandbox could not judge a sample (down, bad reply)
    └── LLMError                       anything the LLM client raises
        ├── LLMRetryableError          the client retries these (backoff + jitter, Retry-After)
        │   ├── LLMRateLimited         HTTP 429 (``retry_after_s`` from the header, if any)
        │   ├── LLMServerError         HTTP 5xx (and 408)
        │   ├── LLMConnectionError     refused, reset, DNS, disconnected mid-body
        │   ├── LLMTimeout             one attempt ran past the client's read/connect timeout
        │   └── LLMUnavailable         every endpoint's circuit is open or cooling down
        └── LLMFatalError              never retried
            ├── LLMBadRequest          HTTP 4xx other than 408/429 (bad parameters, unknown model)
            │   └── LLMAuthError       HTTP 401/403
            ├── LLMProtocolError       a reply that is not the OpenAI shape
            ├── LLMRetriesExhausted    the last retryable error, after ``max_retries`` retries
            └── LLMDeadlineExceeded    the caller's deadline passed (or a wait would pass it)

Third-party errors (aiohttp, JSON) are wrapped at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class SynthError(Exception):
    """Root of every error raised by ``codekiln.synth``."""


class ConfigError(SynthError, ValueError):
    """Invalid configuration; the message names the key and the bad value."""


class PromptError(SynthError):
    """A prompt data file is missing, malformed, or names an unknown parser."""


class ParseError(SynthError):
    """A model output does not satisfy its prompt's parser. ``rule`` is a short reason slug."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


class ExecutionError(SynthError):
    """The sandbox could not judge a sample (as opposed to the sample failing its tests)."""


class LLMError(SynthError):
    """Anything the LLM client raises. ``endpoint`` is the base URL involved, if one was."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class LLMRetryableError(LLMError):
    """A transient failure; ``retry_after_s`` is the server's hint when it gave one."""

    def __init__(
        self, message: str, *, endpoint: str | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.retry_after_s = retry_after_s


class LLMRateLimited(LLMRetryableError):
    """HTTP 429."""


class LLMServerError(LLMRetryableError):
    """HTTP 5xx or 408. ``status`` is the HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        endpoint: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, retry_after_s=retry_after_s)
        self.status = status


class LLMConnectionError(LLMRetryableError):
    """The connection failed or dropped."""


class LLMTimeout(LLMRetryableError):
    """One attempt exceeded the client's connect or read timeout."""


class LLMUnavailable(LLMRetryableError):
    """No endpoint can take a request now (circuits open, rate-limit cool-downs)."""


class LLMFatalError(LLMError):
    """Not worth retrying."""


class LLMBadRequest(LLMFatalError):
    """HTTP 4xx other than 408 and 429; ``status`` and the server's message are kept."""

    def __init__(self, message: str, *, status: int, endpoint: str | None = None) -> None:
        super().__init__(message, endpoint=endpoint)
        self.status = status


class LLMAuthError(LLMBadRequest):
    """HTTP 401 or 403."""


class LLMProtocolError(LLMFatalError):
    """The server answered something that is not the OpenAI response shape."""


class LLMRetriesExhausted(LLMFatalError):
    """Retries ran out; ``last`` is the final retryable error (also the ``__cause__``)."""

    def __init__(self, message: str, *, last: LLMRetryableError, attempts: int) -> None:
        super().__init__(message, endpoint=last.endpoint)
        self.last = last
        self.attempts = attempts


class LLMDeadlineExceeded(LLMFatalError):
    """The caller's deadline passed, or waiting for the next try would pass it."""
