"""The HTTP API: auth, caps, errors, batch, metrics, schema, SandboxFusion's /run_code."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from codekiln.sandbox import AuthError, Overloaded, RequestInvalid
from codekiln.sandbox.client import RunRequest, SandboxClient

from tests.fixtures.sandbox import SandboxService, start_service, stop_service

pytestmark = pytest.mark.docker


@pytest.fixture
async def http(sandbox_service: SandboxService) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {sandbox_service.token}"}
    async with aiohttp.ClientSession(sandbox_service.url, headers=headers) as session:
        yield session


class TestAuth:
    async def test_missing_token_is_401(self, sandbox_service: SandboxService) -> None:
        """A run without a bearer token is refused with 401."""
        body = {"language": "python", "code": ""}
        async with (
            aiohttp.ClientSession(sandbox_service.url) as s,
            s.post("/v1/run", json=body) as resp,
        ):
            assert resp.status == 401

    async def test_wrong_token_raises_auth_error(self, sandbox_service: SandboxService) -> None:
        """The client maps 401 to AuthError."""
        async with SandboxClient(sandbox_service.url, token="x" * 43) as client:
            with pytest.raises(AuthError):
                await client.run(RunRequest(language="python", code=""))

    async def test_health_metrics_schema_need_no_token(
        self, sandbox_service: SandboxService
    ) -> None:
        """/healthz, /metrics and /openapi.json answer without a token."""
        async with aiohttp.ClientSession(sandbox_service.url) as s:
            for path in ("/healthz", "/metrics", "/openapi.json"):
                async with s.get(path) as resp:
                    assert resp.status == 200, path


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"language": "cobol", "code": ""}, "unsupported language"),
            ({"language": "python", "code": "", "timeout_s": 10_000}, "exceeds the cap"),
            ({"language": "python", "code": "", "memory_mb": 10**6}, "exceeds the cap"),
            ({"language": "python", "code": "", "timeout_s": -1}, "positive"),
            ({"language": "python"}, "code must be a string"),
            ({"language": "python", "code": "", "files": {"../x": ""}}, "bad file name"),
            ({"language": "python", "code": "", "bogus": 1}, "unknown field"),
        ],
    )
    async def test_bad_request_is_400_with_reason(
        self, http: aiohttp.ClientSession, body: dict[str, object], message: str
    ) -> None:
        """A malformed or over-cap request gets 400 naming the problem."""
        async with http.post("/v1/run", json=body) as resp:
            assert resp.status == 400
            assert message in (await resp.json())["error"]

    async def test_not_json_is_400(self, http: aiohttp.ClientSession) -> None:
        """A body that is not JSON gets 400."""
        async with http.post("/v1/run", data=b"{nope") as resp:
            assert resp.status == 400

    @pytest.mark.parametrize("route", ["/v1/run", "/v1/run/batch", "/run_code"])
    @pytest.mark.parametrize("opener", ["[", '{"a":'])
    async def test_deeply_nested_json_is_400(
        self, http: aiohttp.ClientSession, route: str, opener: str
    ) -> None:
        """JSON nested past the decoder's recursion limit gets 400, not 500."""
        body = opener * 100_000
        async with http.post(route, data=body.encode()) as resp:
            assert resp.status == 400
            assert "nested too deeply" in (await resp.json())["error"]

    @pytest.mark.parametrize(
        ("field", "body"),
        [
            ("stdin", '{"language": "python", "code": "", "stdin": "a\\ud800b"}'),
            ("code", '{"language": "python", "code": "x = 1 # \\udfff"}'),
            ("tests", '{"language": "python", "code": "", "tests": "\\udc80"}'),
            ("files", '{"language": "python", "code": "", "files": {"d.txt": "\\ud83d"}}'),
            ("file name", '{"language": "python", "code": "", "files": {"\\ud800": "x"}}'),
        ],
    )
    async def test_lone_surrogate_is_400(
        self, http: aiohttp.ClientSession, field: str, body: str
    ) -> None:
        """A lone surrogate (valid JSON, not valid Unicode text) in any text field is a 400
        naming it, before any container sees it."""
        async with http.post("/v1/run", data=body.encode()) as resp:
            assert resp.status == 400
            error = (await resp.json())["error"]
        assert "lone surrogate" in error
        assert field.rsplit(maxsplit=1)[-1] in error

    async def test_body_over_cap_is_413(self, http: aiohttp.ClientSession) -> None:
        """A body over the size cap is refused with 413 before it is parsed."""
        big = b'{"language": "python", "code": "' + b"#" * (33 * 2**20) + b'"}'
        async with http.post("/v1/run", data=io.BytesIO(big)) as resp:
            assert resp.status == 413

    async def test_client_raises_request_invalid(self, sandbox_client: SandboxClient) -> None:
        """The client maps 400 to RequestInvalid."""
        with pytest.raises(RequestInvalid, match="unsupported language"):
            await sandbox_client.run(RunRequest(language="cobol", code=""))

    async def test_batch_item_error_names_the_item(self, http: aiohttp.ClientSession) -> None:
        """One bad item in a batch fails the batch with its index."""
        body = [{"language": "python", "code": ""}, {"language": "python"}]
        async with http.post("/v1/run/batch", json=body) as resp:
            assert resp.status == 400
            assert "item 1" in (await resp.json())["error"]


class TestObservability:
    @pytest.mark.parametrize("route", ["/v1/run", "/v1/run/batch"])
    async def test_request_id_is_echoed(self, http: aiohttp.ClientSession, route: str) -> None:
        """The X-Request-Id given is echoed back (the streamed batch answer included)."""
        body: object = {"language": "python", "code": "pass"}
        if route.endswith("batch"):
            body = [body]
        async with http.post(route, json=body, headers={"X-Request-Id": "abc123"}) as resp:
            assert resp.status == 200
            assert resp.headers["X-Request-Id"] == "abc123"

    async def test_metrics_count_runs(self, http: aiohttp.ClientSession) -> None:
        """/metrics counts runs by language and status."""
        async with http.post("/v1/run", json={"language": "bash", "code": "exit 4"}) as resp:
            assert (await resp.json())["status"] == "failed"
        async with http.get("/metrics") as resp:
            text = await resp.text()
        assert 'codekiln_sandbox_runs_total{language="bash",status="failed"}' in text

    async def test_openapi_lists_routes(self, http: aiohttp.ClientSession) -> None:
        """/openapi.json describes the run routes."""
        async with http.get("/openapi.json") as resp:
            spec = await resp.json()
        assert {"/v1/run", "/v1/run/batch", "/run_code"} <= set(spec["paths"])


class TestSandboxFusion:
    async def test_run_code_success_shape(self, http: aiohttp.ClientSession) -> None:
        """/run_code answers SandboxFusion's RunCodeResponse for a passing program."""
        files = {"data.txt": base64.b64encode(b"hello").decode()}
        body = {
            "code": "print(open('data.txt').read())",
            "language": "python",
            "run_timeout": 5,
            "files": files,
        }
        async with http.post("/run_code", json=body) as resp:
            out = await resp.json()
        assert out["status"] == "Success"
        assert out["run_result"]["status"] == "Finished"
        assert out["run_result"]["return_code"] == 0
        assert out["run_result"]["stdout"] == "hello\n"
        assert set(out) == {
            "status",
            "message",
            "compile_result",
            "run_result",
            "executor_pod_name",
            "files",
        }

    async def test_run_code_timeout_shape(self, http: aiohttp.ClientSession) -> None:
        """A SandboxFusion run over its run_timeout is Failed with TimeLimitExceeded."""
        body = {"code": "while true; do :; done", "language": "bash", "run_timeout": 1}
        async with http.post("/run_code", json=body) as resp:
            out = await resp.json()
        assert out["status"] == "Failed"
        assert out["run_result"]["status"] == "TimeLimitExceeded"

    async def test_run_code_compile_error_shape(self, http: aiohttp.ClientSession) -> None:
        """A C++ compile error is reported in compile_result with no run_result."""
        body = {"code": "int main( {", "language": "cpp"}
        async with http.post("/run_code", json=body) as resp:
            out = await resp.json()
        assert out["status"] == "Failed"
        assert out["run_result"] is None
        assert out["compile_result"]["return_code"] != 0
        assert "error" in out["compile_result"]["stderr"]

    @pytest.mark.parametrize(
        "content", [b"\xed\xa0\x80", b"\xff\xfe"], ids=["encoded-surrogate", "not-utf8"]
    )
    async def test_run_code_file_that_is_no_text_is_400(
        self, http: aiohttp.ClientSession, content: bytes
    ) -> None:
        """A SandboxFusion file whose bytes are no UTF-8 text (a UTF-8-encoded lone surrogate
        included) is a 400 naming the file, not the program's own failure."""
        body = {
            "code": "print(1)",
            "language": "python",
            "files": {"d.bin": base64.b64encode(content).decode()},
        }
        async with http.post("/run_code", json=body) as resp:
            assert resp.status == 400
            assert "d.bin" in (await resp.json())["error"]

    async def test_run_code_nodejs_name(self, http: aiohttp.ClientSession) -> None:
        """SandboxFusion's 'nodejs' runs JavaScript."""
        body = {"code": "console.log([1,2].map(x => x * 2).join(','))", "language": "nodejs"}
        async with http.post("/run_code", json=body) as resp:
            out = await resp.json()
        assert out["run_result"]["stdout"] == "2,4\n"


@pytest.fixture(scope="module")
def tiny_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxService]:
    """One container, a queue of one: easy to overload."""
    service = start_service(tmp_path_factory.mktemp("tiny"), pool_size=1, max_queue=1)
    try:
        yield service
    finally:
        stop_service(service)


async def test_full_queue_is_429_with_retry_after(tiny_service: SandboxService) -> None:
    """Beyond pool plus queue, runs are refused with 429 and Retry-After (client: Overloaded)."""
    slow = RunRequest(language="python", code="import time; time.sleep(1.5)", timeout_s=5)
    async with SandboxClient(tiny_service.url, token=tiny_service.token, retries=0) as client:
        results = await asyncio.gather(
            *(client.run(slow) for _ in range(4)), return_exceptions=True
        )
    overloaded = [r for r in results if isinstance(r, Overloaded)]
    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(done) == 2
    assert len(overloaded) == 2
    assert all(o.retry_after_s >= 1 for o in overloaded)


async def test_retry_after_follows_the_recent_run_time(tiny_service: SandboxService) -> None:
    """After runs that each took at least 1.5 s, a refused run is told to wait at least 2 s
    (the recent run time, rounded up), not the 1 s of a queue of quick runs."""
    slow = RunRequest(language="python", code="import time; time.sleep(1.5)", timeout_s=5)
    async with SandboxClient(tiny_service.url, token=tiny_service.token, retries=0) as client:
        for _ in range(4):
            assert (await client.run(slow)).status == "passed"
        results = await asyncio.gather(
            *(client.run(slow) for _ in range(3)), return_exceptions=True
        )
    overloaded = [r for r in results if isinstance(r, Overloaded)]
    assert overloaded, results
    assert all(o.retry_after_s >= 2 for o in overloaded), overloaded


async def test_client_retries_429_until_served(tiny_service: SandboxService) -> None:
    """With retries, the client waits out 429s and every run is served."""
    quick = RunRequest(language="python", code="import time; time.sleep(0.2); print('ok')")
    async with SandboxClient(tiny_service.url, token=tiny_service.token, retries=20) as client:
        results = await asyncio.gather(*(client.run(quick) for _ in range(5)))
    assert [r.stdout for r in results] == ["ok\n"] * 5
