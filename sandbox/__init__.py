"""codekiln.sandbox: run untrusted code and its tests in hardened, warm Docker containers.

Deploys alone: imports nothing else of codekiln. Other components talk to it through
``codekiln.sandbox.client``.
"""

from .errors import (
    AuthError,
    ClientError,
    ConfigInvalid,
    EngineError,
    ImageError,
    Overloaded,
    ProtocolError,
    RequestInvalid,
    SandboxError,
    ServiceUnavailable,
    SupervisorOOMKilled,
    TarballNotFound,
)
from .models import STATUSES, RunRequest, RunResult, TestVerdict

__all__ = [
    "STATUSES",
    "AuthError",
    "ClientError",
    "ConfigInvalid",
    "EngineError",
    "ImageError",
    "Overloaded",
    "ProtocolError",
    "RequestInvalid",
    "RunRequest",
    "RunResult",
    "SandboxError",
    "ServiceUnavailable",
    "SupervisorOOMKilled",
    "TarballNotFound",
    "TestVerdict",
]
