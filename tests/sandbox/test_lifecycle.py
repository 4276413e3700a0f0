"""Service lifecycle against the real engine: orphans of a killed service are reaped."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import docker
import pytest
from codekiln.sandbox.client import RunRequest, RunResult, SandboxClient

from tests.fixtures.sandbox import start_service, stop_process, stop_service

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


def test_kill_9_mid_job_and_restart_one_second_later_reaps_the_old_containers(
    tmp_path: Path,
) -> None:
    """Killed with -9 while its containers run jobs, and restarted one second later with its
    process still a zombie (nobody waited for it yet): the new service reaps every old
    container at start, though they would otherwise live on until their jobs end."""
    instance = f"pytest-kill9-busy-{os.getpid()}"
    first = start_service(tmp_path / "a", pool_size=2, instance=instance)
    old = _containers(instance)
    old_ids = {c.id for c in old}
    # The owner is recorded with its start time, so a later process given the same pid is not
    # taken for it (stat's field 22, after the parenthesised command name).
    stat = Path(f"/proc/{first.process.pid}/stat").read_text()
    start = stat[stat.rfind(")") + 2 :].split()[19]
    owner = f"{socket.gethostname()}:{first.process.pid}:{start}"
    assert {c.labels["codekiln.sandbox.owner"] for c in old} == {owner}

    async def busy() -> None:
        async with SandboxClient(first.url, token=first.token, retries=0) as client:
            sleeper = RunRequest(language="bash", code="sleep 50", timeout_s=55)
            tasks = [asyncio.ensure_future(client.run(sleeper)) for _ in range(2)]
            await asyncio.sleep(1.5)  # both jobs are in their containers
            os.kill(first.process.pid, signal.SIGKILL)
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(busy())
    time.sleep(1)  # not first.process.poll() or wait(): either would reap the zombie
    second = start_service(tmp_path / "b", pool_size=2, instance=instance)
    try:
        # Reaped during the new service's start, not when the old jobs' 55 s end.
        left = old_ids & {c.id for c in _containers(instance)}
        assert not left, f"{len(left)} old container(s) still there after the restart"
        assert len(_containers(instance)) == 2 + SPARES
    finally:
        stop_service(second)
        first.process.wait()
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


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare to hide the channel directory from the engine",
)
@pytest.mark.parametrize("shared", [False, True], ids=["blind", "channel-dir"])
def test_engine_blind_to_the_temporary_directory(tmp_path: Path, shared: bool) -> None:
    """Where the engine cannot see the service's temporary directory (a tmpfs mounted in the
    service's own mount namespace, as with an engine in another container), jobs run over the
    attached stdio; with ``--channel-dir`` on a directory both see, over the job socket."""
    base = tmp_path / "channels"
    base.mkdir()
    token = secrets.token_urlsafe(32)
    (tmp_path / "token").write_text(token)
    ready = tmp_path / "ready"
    log_path = tmp_path / "service.log"
    instance = f"pytest-blind-{os.getpid()}"
    serve = [
        sys.executable, "-m", "codekiln.sandbox.cli", "serve", "--host", "127.0.0.1",
        "--port", "0", "--token-file", str(tmp_path / "token"), "--pool-size", "1",
        "--instance", instance, "--ready-file", str(ready),
    ]  # fmt: skip
    # A socket path has at most 107 bytes: pytest's temporary paths are too long for it.
    visible = Path(tempfile.mkdtemp(prefix="ckch-", dir="/tmp"))
    if shared:
        serve += ["--channel-dir", str(visible / "channels")]
    script = 'mount -t tmpfs tmpfs "$BASE" && exec "$@"'
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", script, "sh", *serve],
            env=dict(os.environ, BASE=str(base), TMPDIR=str(base)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.05)

        async def one_run() -> RunResult:
            async with SandboxClient(ready.read_text().strip(), token=token) as client:
                return await client.run(RunRequest(language="python", code="print(6 * 7)"))

        r = asyncio.run(one_run())
        assert (r.status, r.stdout) == ("passed", "42\n"), r
        assert ("no socket, attached stdio" in log_path.read_text()) is not shared
    finally:
        stop_process(proc)
        shutil.rmtree(visible, ignore_errors=True)
    assert _wait_for(lambda: not _containers(instance))


async def test_a_job_takes_the_idle_container_whose_memory_limit_fits(tmp_path: Path) -> None:
    """With every container idle, a job goes to one whose memory limit already fits it: runs
    alternating between two memory_mb values change a container's limit once, not per run."""
    service = start_service(tmp_path, pool_size=2)
    try:
        async with (
            SandboxClient(service.url, token=service.token) as client,
            aiohttp.ClientSession() as http,
        ):

            async def all_idle() -> None:
                for _ in range(600):
                    async with http.get(f"{service.url}/healthz") as h:
                        if (await h.json())["idle"] == 2:
                            return
                    await asyncio.sleep(0.05)
                raise AssertionError("the pool did not come back to 2 idle containers")

            for memory_mb in (128, 128, 256, 256, 128, 128, 256, 256):
                await all_idle()
                r = await client.run(
                    RunRequest(language="python", code="print(1)", memory_mb=memory_mb)
                )
                assert r.status == "passed", r
            async with http.get(f"{service.url}/metrics") as m:
                metrics = await m.text()
    finally:
        stop_service(service)
    updates = [
        line for line in metrics.splitlines()
        if line.startswith("codekiln_sandbox_memory_limit_updates_total ")
    ]  # fmt: skip
    assert updates == ["codekiln_sandbox_memory_limit_updates_total 1.0"], updates
