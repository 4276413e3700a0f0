"""Service lifecycle against the real engine: orphans of a killed service are reaped."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import docker
import pytest
from codekiln.sandbox.client import SandboxClient

from tests.fixtures.sandbox import start_service, stop_service

from .conftest import CONTAINER_ID, SPARES, Host, run_py

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
    assert len(old_ids) == 2 + SPARES
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    second = start_service(tmp_path / "b", pool_size=2, instance=instance)
    try:
        assert _wait_for(lambda: not old_ids & {c.id for c in _containers(instance)})
        assert len(_containers(instance)) == 2 + SPARES
    finally:
        stop_service(second)
    assert _wait_for(lambda: not _containers(instance))


def test_sigterm_removes_every_container(tmp_path: Path) -> None:
    """A service stopped with SIGTERM removes its containers."""
    instance = f"pytest-term-{os.getpid()}"
    service = start_service(tmp_path, pool_size=2, instance=instance)
    assert len(_containers(instance)) == 2 + SPARES
    stop_service(service)
    assert service.process.returncode == 0
    assert _wait_for(lambda: not _containers(instance))


async def test_recycled_container_is_replaced_by_a_spare_started_before(
    solo: SandboxClient, host: Host
) -> None:
    """After a kill, the next job runs in a spare container that was running before the kill."""
    before = set(await asyncio.to_thread(host.container_ids, True))
    assert len(before) == 1 + SPARES
    r = await run_py(solo, "while True:\n    pass\n", timeout_s=1)
    assert r.status == "timeout", r
    after = await run_py(solo, CONTAINER_ID)
    assert after.status == "passed", after
    assert after.stdout.split()[1] in before
