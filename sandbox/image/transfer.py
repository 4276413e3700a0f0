"""Move the sandbox image between engines as a tarball (``docker save`` / ``docker load``).

The application image carries the sandbox image as a tarball; on Kubernetes the sandbox pod
loads it into its Docker-in-Docker engine before serving, because that engine pulls nothing.
These functions speak to the engine through the Docker SDK, so the application image needs no
Docker CLI.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import ImageError, TarballNotFound

log = logging.getLogger("codekiln.sandbox.image")

CHUNK = 1 << 20


def connect(timeout_s: float, *, poll_s: float = 1.0) -> Any:
    """A Docker SDK client for the engine of the environment (DOCKER_HOST or the default socket),
    retried until it answers a ping; ImageError after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        client, error = _try_connect()
        if client is not None:
            return client
        if time.monotonic() >= deadline:
            msg = f"no Docker engine answered within {timeout_s:g} s: {error}"
            raise ImageError(msg) from error
        time.sleep(poll_s)


def _try_connect() -> tuple[Any, Exception | None]:
    import docker

    # The socket is tried first by hand: the SDK leaks its socket when the connect fails.
    error = _unix_socket_error()
    if error is not None:
        return None, error
    try:
        client = docker.from_env()  # asks the engine's API version at once
    except docker.errors.DockerException as exc:
        return None, exc
    try:
        client.ping()
    except Exception as exc:  # the SDK raises several kinds while the engine starts
        client.close()
        return None, exc
    return client, None


def _unix_socket_error() -> Exception | None:
    """Why the engine's unix socket (DOCKER_HOST or the default) does not accept a connection,
    or None when it does or when DOCKER_HOST is not a unix socket."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(host.removeprefix("unix://"))
        except OSError as exc:
            return exc
    return None


def save(client: Any, tag: str, path: Path) -> int:
    """Write image ``tag`` to ``path`` atomically (temp file, then rename); return its size."""
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound as exc:
        raise ImageError(
            f"image {tag} not found: build it with `codekiln-sandbox image build`"
        ) from exc
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as out:
        for chunk in image.save(chunk_size=CHUNK, named=True):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    size = path.stat().st_size
    log.info("saved %s to %s (%.1f MB)", tag, path, size / 1e6)
    return size


def load(client: Any, path: Path) -> list[str]:
    """Load the images in the tarball ``path``; return their tags."""
    import docker.errors

    if not path.is_file():
        raise TarballNotFound(f"{path}: no such image tarball")
    with path.open("rb") as src:
        try:
            images = client.images.load(src)
        except docker.errors.ImageLoadError as exc:
            raise ImageError(f"{path}: the engine refused the tarball: {exc}") from exc
        except docker.errors.APIError as exc:
            raise ImageError(f"{path}: the engine refused the tarball: {exc.explanation}") from exc
    tags = [t for image in images for t in image.tags]
    log.info("loaded %s from %s", ", ".join(tags) or "untagged images", path)
    return tags
