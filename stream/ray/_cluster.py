"""Joining or starting Ray, and waiting on tasks without ever hanging.

Every wait has a deadline: :func:`wait_all` stops the run with a clear error when no task
finished within ``task_timeout_s`` (a stuck or starved task, a lost node that Ray keeps waiting
for), cancels what is left, and the same command resumes from the committed shards.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from codekiln.stream.ray.options import RayOptions
from codekiln.stream.runtime.errors import StageCrashed, StreamError

#: Set in the driver's environment before starting a local instance so that Ray resolves this
#: node's address to 127.0.0.1 and every Ray server binds the loopback interface only.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class RayError(StreamError):  # type: ignore[misc]
    """Ray could not be reached, or a task failed for a reason that is not a stage's."""


def connect(options: RayOptions) -> bool:
    """Join ``options.address`` or start a local instance; ``True`` if this call started it
    (the caller then shuts it down). An already-initialised Ray (a test fixture, a notebook,
    a RayJob driver that called ``ray.init``) is reused as is."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
    if options.address is None:
        os.environ[LOOPBACK_ENV] = "0"
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
        kwargs["num_cpus"] = options.num_cpus or os.cpu_count() or 1
        kwargs["object_store_memory"] = options.object_store_mb * 1024 * 1024
    else:
        kwargs = {"address": options.address, "log_to_driver": False}
        _check_reachable(options.address, options.connect_timeout_s)
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = options.address or "a local instance"
        raise RayError(f"cannot start or join Ray ({where}): {exc}") from exc
    return True


def _check_reachable(address: str, timeout_s: float) -> None:
    """Fail fast on an address nothing listens on: Ray itself retries it for minutes."""
    if address == "auto":
        return  # Ray reads the local cluster's address file, and fails at once without one
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise RayError(f"--address {address!r}: expected auto, host:port or ray://host:port")
    host = host.strip("[]")
    if host in ("localhost", "::1") or host.startswith("127."):
        # Ray would rewrite a loopback address to this node's outward address; keep loopback.
        os.environ[LOOPBACK_ENV] = "0"
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise RayError(
            f"cannot reach the Ray cluster at {address} within {timeout_s:g} s: "
            f"{exc.strerror or exc}"
        ) from exc


def shutdown() -> None:
    import ray

    ray.shutdown()


def cluster_cpus() -> int:
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return max(1, int(resources.get("CPU", 1)))


def _unwrap(exc: BaseException, what: str) -> BaseException:
    import ray.exceptions as rex

    if isinstance(exc, rex.RayTaskError):
        cause: BaseException = exc.cause
        if isinstance(cause, StreamError):
            ours: BaseException = exc.cause  # a stage's own error, with its exact message
            return ours
        crashed: BaseException = StageCrashed(what, f"{type(cause).__name__}: {cause}")
        return crashed
    if isinstance(exc, rex.WorkerCrashedError | rex.NodeDiedError | rex.ObjectLostError):
        return RayError(f"{what}: a Ray worker or node died and retries ran out: {exc}")
    if isinstance(exc, rex.RayError):
        return RayError(f"{what}: {type(exc).__name__}: {exc}")
    return exc


def wait_all(refs: Sequence[Any], timeout_s: float, what: str) -> list[Any]:
    """The results of ``refs`` in order; raises when a task failed or nothing progressed for
    ``timeout_s`` seconds (remaining tasks are cancelled)."""
    import ray

    remaining = list(refs)
    while remaining:
        done, remaining = ray.wait(remaining, num_returns=1, timeout=timeout_s)
        if not done:
            for ref in remaining:
                ray.cancel(ref, force=True)
            raise RayError(
                f"{what}: no task finished within {timeout_s:g} s ({len(remaining)} left); "
                "stopped instead of hanging; run the same command again to resume"
            )
        try:
            ray.get(done, timeout=timeout_s)
        except Exception as exc:
            for ref in remaining:
                ray.cancel(ref, force=True)
            raise _unwrap(exc, what) from exc
    try:
        return list(ray.get(list(refs), timeout=timeout_s))
    except Exception as exc:
        raise _unwrap(exc, what) from exc
