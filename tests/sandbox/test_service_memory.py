"""The service's own memory stays bounded whatever a batch's programs print: the batch
response is streamed in input order, and the service holds a bounded number of results."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import aiohttp
import pytest

from tests.fixtures.sandbox import SandboxService, start_service, stop_service

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RSS_LIMIT_MB = 512
# Each program writes its index, then random bytes past its 1 MiB cap to stdout and to
# stderr: 64 MiB of output in all, ~500 MB of JSON with ASCII escapes; buffered whole, the
# response took the service's RSS to ~1 GiB (4 GiB with 128 items).
FLOOD = (
    "import os\n"
    "os.write(1, b'%d\\n' % INDEX)\n"
    "os.write(1, os.urandom((1 << 20) + 1))\n"
    "os.write(2, os.urandom((1 << 20) + 1))\n"
)
ITEMS = 32


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxService]:
    svc = start_service(tmp_path_factory.mktemp("memory"), pool_size=2)
    try:
        yield svc
    finally:
        stop_service(svc)


async def post_ok(service: SandboxService, route: str, body: object) -> bytes:
    """POST ``body`` as JSON to ``route`` with the service's token; the raw answer of a 200."""
    headers = {"Authorization": f"Bearer {service.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(f"{service.url}{route}", json=body) as resp,
    ):
        assert resp.status == 200
        return await resp.read()


async def test_batch_of_output_floods_keeps_service_rss_bounded(service: SandboxService) -> None:
    """A batch whose every program prints its full output cap of binary to both streams is
    answered whole, in order, while the service's peak RSS stays under 512 MiB."""
    body = [
        {"language": "python", "code": f"INDEX = {i}\n" + FLOOD, "timeout_s": 10}
        for i in range(ITEMS)
    ]
    results = json.loads(await post_ok(service, "/v1/run/batch", body))
    assert len(results) == ITEMS
    for i, r in enumerate(results):
        assert r["status"] == "output_exceeded", r["reason"]
        assert r["truncated"] is True
        assert r["stdout"].startswith(f"{i}\n")
        assert len(r["stdout"].encode("utf-8", "surrogatepass")) >= 1 << 20
    peak = service.memory_mb("VmHWM")
    assert peak <= RSS_LIMIT_MB, f"service peak RSS {peak:.0f} MiB"


async def test_client_gone_mid_batch_frees_every_held_result(service: SandboxService) -> None:
    """A client that drops a streamed batch after its first result leaves nothing held: the
    service's count of held batch results and its queue go back to 0, and the next batch,
    longer than the service-wide bound on held results, is answered whole."""
    slow = {"language": "python", "code": "import time; time.sleep(0.3); print('x')"}
    headers = {"Authorization": f"Bearer {service.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{service.url}/v1/run/batch", json=[slow] * 12) as resp:
            assert resp.status == 200
            first = await resp.content.read(1)
            assert first == b"["
        # The response is closed unread: the service's next write finds the client gone.
        for _ in range(600):
            async with http.get(f"{service.url}/healthz") as h:
                health = await h.json()
            if health["pending"] == 0 and health["batch_results_held"] == 0:
                break
            await asyncio.sleep(0.1)
        assert (health["pending"], health["batch_results_held"]) == (0, 0), health
        quick = {"language": "bash", "code": "echo $((6 * 7))"}
        async with http.post(f"{service.url}/v1/run/batch", json=[quick] * 40) as resp:
            results = await resp.json()
    assert [r["stdout"] for r in results] == ["42\n"] * 40


@pytest.mark.parametrize("route", ["/v1/run", "/v1/run/batch"])
async def test_binary_output_is_sent_as_utf8_not_escapes(
    service: SandboxService, route: str
) -> None:
    """Binary output (decoded to U+FFFD) goes out as 3 UTF-8 bytes per byte, not as a 6-byte
    JSON escape: the answer for 100,000 bytes of 0xff stays under 400,000 bytes."""
    run = {"language": "python", "code": "import os\nos.write(1, b'\\xff' * 100_000)"}
    body: object = [run] if route.endswith("batch") else run
    raw = await post_ok(service, route, body)
    decoded = json.loads(raw)
    result = decoded[0] if isinstance(decoded, list) else decoded
    assert result["stdout"] == "\ufffd" * 100_000
    assert len(raw) < 400_000, len(raw)
