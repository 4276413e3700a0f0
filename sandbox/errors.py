"""Exceptions of codekiln.sandbox.

SandboxError                      root of everything this package raises
├── RequestInvalid                a run request or a limit is malformed (HTTP 400); fatal
├── ConfigInvalid                 the service configuration is malformed; fatal at start
├── ClientError                   raised by SandboxClient
│   ├── AuthError                 the token was refused (401); fatal
│   ├── Overloaded                the service queue is full (429); retryable after ``retry_after_s``
│   ├── ServiceUnavailable        connection failed, timeout or a 5xx answer; retryable
│   └── ProtocolError             an answer this client does not understand; fatal
├── ImageError                    the sandbox image cannot be built or is missing; fatal
│   └── TarballNotFound           the image tarball given does not exist (a usage error, exit 2:
│                                 also cli_base.InputNotFound)
└── EngineError                   the Docker engine failed or a container misbehaved; the pool
    │                             recycles the container, the request gets status "error"
    └── SupervisorOOMKilled       the job filled the container's memory and the kernel's OOM
                                  killer ended the supervisor too: status "memory_exceeded"
"""

from __future__ import annotations

from . import cli_base


class SandboxError(Exception):
    """Root of every exception raised by codekiln.sandbox."""


class RequestInvalid(SandboxError, ValueError):
    """A run request or one of its limits is malformed."""


class ConfigInvalid(SandboxError, ValueError):
    """The service configuration is malformed."""


class ClientError(SandboxError):
    """Raised by SandboxClient."""

    retryable = False


class AuthError(ClientError):
    """The service refused the bearer token."""


class Overloaded(ClientError):
    """The service's queue is full; try again after ``retry_after_s`` seconds."""

    retryable = True

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(ClientError):
    """The service could not be reached, timed out or failed with a 5xx answer."""

    retryable = True


class ProtocolError(ClientError):
    """The service answered something this client does not understand."""


class ImageError(SandboxError):
    """The sandbox image cannot be built or is missing."""


class TarballNotFound(ImageError, cli_base.InputNotFound):
    """The image tarball given to ``codekiln-sandbox image load`` does not exist."""


class EngineError(SandboxError):
    """The Docker engine failed or a container misbehaved."""


class SupervisorOOMKilled(EngineError):
    """The container's channel closed during a job, and the engine reported an OOM kill in
    the container since the job started: the job's memory use ended the supervisor."""
