"""The service's configuration: one frozen object, built once at the entry point."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigInvalid

LABEL = "codekiln.sandbox"


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    token: str = field(repr=False)
    image: str | None = None  # None: the tag of the current image recipe
    docker_socket: str = "/var/run/docker.sock"
    # Where the per-container job channels (unix sockets, each removed once its supervisor is
    # connected) are made; None: the system's temporary directory. Must be on the engine's host.
    channel_dir: str | None = None
    # Warm containers; each runs one job at a time. 2 per core is enough to hide the
    # round trip to the engine while another job computes.
    pool_size: int = 4
    # Requests admitted beyond the ones running; more get 429. Bounded so that a flood turns
    # into fast 429s (with Retry-After) instead of memory growth and ever-longer waits.
    max_queue: int = 256
    max_batch: int = 512
    max_body_bytes: int = 32 * 1024 * 1024
    max_code_bytes: int = 4 * 1024 * 1024
    max_timeout_s: float = 60.0
    max_memory_mb: int = 1024
    compile_timeout_s: float = 30.0
    output_limit_bytes: int = 1024 * 1024
    # Host-side deadline: the job's own limits plus this; a container missing it is killed.
    host_grace_s: float = 5.0
    container_cpus: float = 1.0
    pids_limit: int = 128
    nproc: int = 96
    nofile: int = 256
    fsize_mb: int = 32
    sandbox_tmpfs_mb: int = 64
    tmp_tmpfs_mb: int = 64
    shm_mb: int = 16
    jobs_per_container: int = 1000
    # Containers started ahead, outside the pool: one replaces a recycled container at once
    # (a start costs 0.5-1 s), and a new spare is started in the background. 0: none.
    spare_containers: int = 1
    container_start_timeout_s: float = 60.0
    # Also accept the token as the first path segment of SandboxFusion's route,
    # ``/t/<token>/run_code``: its official client can only be given an endpoint URL. The
    # service never logs that path; proxies in front of it might (docs/sandbox.md).
    token_in_path: bool = True
    # Distinguishes this service's containers from another instance's on the same engine.
    instance: str = "default"

    def __post_init__(self) -> None:
        if not self.token or len(self.token) < 16:
            raise ConfigInvalid("token must be at least 16 characters")
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if f.name == "spare_containers":
                if value < 0:
                    raise ConfigInvalid(f"{f.name} must be at least 0, got {value!r}")
            elif value <= 0:
                raise ConfigInvalid(f"{f.name} must be positive, got {value!r}")
        if self.output_limit_bytes > 64 * 1024 * 1024:
            raise ConfigInvalid("output_limit_bytes must be at most 64 MiB")

    @property
    def results_held(self) -> int:
        """Batch results the service holds at once, service-wide (running, or waiting to be
        sent in order); each is at most two output caps plus its JSON, so this bounds the
        service's memory whatever a batch's programs print. Never below the pool, so the pool
        can always be kept busy."""
        return max(32, 2 * self.pool_size)

    @classmethod
    def from_token_file(cls, path: Path, **overrides: Any) -> SandboxConfig:
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ConfigInvalid(f"cannot read token file {path}: {exc}") from exc
        docker_host = os.environ.get("DOCKER_HOST", "")
        if docker_host.startswith("unix://") and "docker_socket" not in overrides:
            overrides["docker_socket"] = docker_host.removeprefix("unix://")
        return cls(token=token, **overrides)

    def with_(self, **changes: Any) -> SandboxConfig:
        return replace(self, **changes)
