"""Service lifecycle against the real engine: orphans of a killed service are reaped."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import docker
import pytest

from tests.fixtures.sandbox import start_service, stop_service

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _containers(instance: str) -> list[docker.models.containers.Container]:
    client = docker.from_env()
    try:
        return client.containers.list(all=True, filters={"label": f"codekiln.sandbox={instance}"})
    finally:
        client.close()


def _wait_for(predicate: object, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_kill_9_then_restart_leaves_no_container_behind(tmp_path: Path) -> None:
    """A service killed with -9 and restarted ends with only the new service's containers;
    stopping it leaves none."""
    instance = f"pytest-kill9-{os.getpid()}"
    first = start_service(tmp_path / "a", pool_size=2, instance=instance)
    old_ids = {c.id for c in _containers(instance)}
    assert len(old_ids) == 2
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    second = start_service(tmp_path / "b", pool_size=2, instance=instance)
    try:
        assert _wait_for(lambda: not old_ids & {c.id for c in _containers(instance)})
        assert len(_containers(instance)) == 2
    finally:
        stop_service(second)
    assert _wait_for(lambda: not _containers(instance))


def test_sigterm_removes_every_container(tmp_path: Path) -> None:
    """A service stopped with SIGTERM removes its containers."""
    instance = f"pytest-term-{os.getpid()}"
    service = start_service(tmp_path, pool_size=2, instance=instance)
    assert len(_containers(instance)) == 2
    stop_service(service)
    assert service.process.returncode == 0
    assert _wait_for(lambda: not _containers(instance))
