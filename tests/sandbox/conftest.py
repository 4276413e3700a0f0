"""Fixtures of the sandbox tests: a one-container service (so consecutive jobs share a container
unless it is recycled) and a view of its containers from the host through the docker SDK."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest
from codekiln.sandbox.client import RunRequest, RunResult, SandboxClient
from codekiln.sandbox.config import SandboxConfig

from tests.fixtures.sandbox import SandboxService, start_service, stop_service

PLANTED_ENV = "CODEKILN_PLANTED_SECRET"
# Spare containers a service runs beside its pool (the config's default; tests do not change it).
SPARES: int = next(
    f.default for f in dataclasses.fields(SandboxConfig) if f.name == "spare_containers"
)  # type: ignore[misc]


class Host:
    """What the host sees of one service's containers."""

    def __init__(self, instance: str, url: str) -> None:
        self.instance = instance
        self.url = url
        self.client = docker.from_env()

    def container_ids(self, running_only: bool = False) -> list[str]:
        # The low-level listing: the high-level one inspects each container and races removal.
        found = self.client.api.containers(
            all=not running_only, filters={"label": f"codekiln.sandbox={self.instance}"}
        )
        return [c["Id"] for c in found]

    def processes(self) -> dict[str, list[dict[str, str]]]:
        """Per running container id: its processes as the host's ps sees them."""
        out: dict[str, list[dict[str, str]]] = {}
        for cid in self.container_ids(running_only=True):
            try:
                top = self.client.api.top(cid, ps_args="-eo pid,uid,stat,comm")
            except docker.errors.APIError:
                continue  # exited between list and top
            titles = top["Titles"]
            out[cid] = [dict(zip(titles, row, strict=False)) for row in top["Processes"] or []]
        return out


@pytest.fixture(scope="module")
def secret() -> str:
    return "planted-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory, secret: str) -> Path:
    path = tmp_path_factory.mktemp("host-secret") / "secret.txt"
    path.write_text(secret)
    return path


@pytest.fixture(scope="module")
def solo_service(
    tmp_path_factory: pytest.TempPathFactory, secret: str, monkeypatch_module: Any
) -> Iterator[SandboxService]:
    """A service with ONE warm container, started with a secret in its environment."""
    monkeypatch_module.setenv(PLANTED_ENV, secret)
    service = start_service(tmp_path_factory.mktemp("solo"), pool_size=1)
    try:
        yield service
    finally:
        stop_service(service)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    mp = pytest.MonkeyPatch()
    try:
        yield mp
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def host(solo_service: SandboxService) -> Host:
    return Host(solo_service.instance, solo_service.url)


@pytest.fixture
async def solo(solo_service: SandboxService) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(solo_service.url, token=solo_service.token) as client:
        yield client


CONTAINER_ID = (
    "import re\n"
    "cg = open('/proc/self/cgroup').read()\n"
    "m = re.search(r'([0-9a-f]{64})', cg)\n"
    "print('CID', m.group(1) if m else '?')\n"
)


async def run_py(client: SandboxClient, code: str, **kw: Any) -> RunResult:
    return await client.run(RunRequest(language="python", code=code, **kw))


async def assert_next_job_healthy(client: SandboxClient) -> None:
    """The job after an abusive one runs normally."""
    r = await run_py(client, "print('ok')")
    assert (r.status, r.stdout) == ("passed", "ok\n"), r


async def settle(host: Host, expected: int = 1, timeout_s: float = 30.0) -> dict[str, Any]:
    """Wait until the pool has ``expected`` idle containers and its spares (recycling done, the
    replaced container gone, the new spare's supervisor up); return what the host sees running
    in them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            async with session.get(host.url + "/healthz") as resp:
                health = await resp.json()
            if (
                health["idle"] == expected
                and health["containers"] == expected
                and health["spares"] == SPARES
            ):
                procs: dict[str, Any] = await asyncio.to_thread(host.processes)
                # A container still being removed or started shows no processes yet.
                if len(procs) == expected + SPARES and all(procs.values()):
                    return procs
            await asyncio.sleep(0.05)
    last: dict[str, Any] = await asyncio.to_thread(host.processes)
    return last
