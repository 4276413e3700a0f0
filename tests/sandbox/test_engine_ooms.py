"""The engine's OOM event watch, against the real Docker engine: the pool gives a job whose
memory use made the kernel end the supervisor too ``memory_exceeded``, not ``error``, when the
engine reported an OOM kill in that container since the job was sent (sandbox/_worker.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import docker
import pytest
from codekiln.sandbox._engine import Engine
from codekiln.sandbox.client import SandboxClient
from codekiln.sandbox.config import LABEL, SandboxConfig
from codekiln.sandbox.image.build import default_recipe

from .conftest import Host, assert_next_job_healthy, run_py

pytestmark = pytest.mark.docker


def _run_container(client: docker.DockerClient, instance: str, code: str) -> str:
    """A container of ``instance`` (its label) with 64 MiB, running ``code``; its id."""
    container = client.containers.run(
        default_recipe().tag,
        ["python3", "-c", code],
        labels={LABEL: instance},
        mem_limit="64m",
        memswap_limit="64m",
        network_mode="none",
        detach=True,
    )
    container.wait(timeout=60)
    container.remove(force=True)
    return str(container.id)


async def test_an_oom_kill_is_seen_from_when_it_happened() -> None:
    """An OOM kill in a container of this instance is seen at and after its moment, not for a
    later moment, and a container without one (or of another instance) is never seen."""
    instance = f"pytest-ooms-{os.getpid()}"
    engine = Engine(SandboxConfig(token="x" * 32, instance=instance), default_recipe().tag)
    client = docker.from_env()
    try:
        await engine.watch_ooms()
        await asyncio.sleep(0.2)  # the event stream is open
        before = time.time()
        hog = "x = b'1' * (512 * 1024 * 1024)"
        oomed = await asyncio.to_thread(_run_container, client, instance, hog)
        quiet = await asyncio.to_thread(_run_container, client, instance, "print('ok')")
        other = await asyncio.to_thread(_run_container, client, instance + "-other", hog)
        assert await engine.oom_since(oomed, before, wait_s=5.0)
        assert not await engine.oom_since(oomed, time.time() + 1.0, wait_s=0.2)
        assert not await engine.oom_since(quiet, before, wait_s=0.5)
        assert not await engine.oom_since(other, before, wait_s=0.5)
    finally:
        engine.close()
        client.close()


async def test_a_supervisor_killed_without_an_oom_is_still_a_sandbox_fault(
    solo: SandboxClient, host: Host
) -> None:
    """The attribution needs an OOM kill since the job was sent: a supervisor killed otherwise
    (SIGKILL from the host) mid-job is an ``error`` (a sandbox fault, the container replaced),
    not ``memory_exceeded``; the next job passes."""
    job = asyncio.create_task(run_py(solo, "import time\ntime.sleep(20)\n", timeout_s=30))
    supervisor = None
    deadline = time.monotonic() + 20
    while supervisor is None and time.monotonic() < deadline:
        for rows in (await asyncio.to_thread(host.processes)).values():
            if any(r["UID"] != "0" and r["COMMAND"] == "python3" for r in rows):
                supervisor = next(
                    int(r["PID"]) for r in rows if r["UID"] == "0" and r["COMMAND"] == "python3"
                )
        await asyncio.sleep(0.1)
    assert supervisor is not None, "the job never started"
    os.kill(supervisor, signal.SIGKILL)
    result = await job
    assert result.status == "error", result
    assert "closed its channel" in result.reason, result
    await assert_next_job_healthy(solo)
