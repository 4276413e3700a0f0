"""The fake OpenAI server itself: it must reject what a real vLLM would reject."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.fakes.openai_server import FakeOpenAIServer


async def _post(server: FakeOpenAIServer, path: str, body: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + path, json=body) as resp,
    ):
        return resp.status, await resp.json()


class TestValidation:
    @pytest.mark.parametrize(
        ("path", "body", "message"),
        [
            ("/v1/completions", {"model": "m", "prompt": "x", "bogus": 1}, "unknown field"),
            ("/v1/completions", {"model": "m", "prompt": []}, "prompt must be"),
            ("/v1/completions", {"model": "m", "prompt": "x", "n": 0}, "n must be"),
            ("/v1/completions", {"model": "m", "prompt": "x", "logprobs": 21}, "logprobs"),
            ("/v1/completions", {"model": "m", "prompt": "x", "top_p": 0}, "top_p"),
            ("/v1/chat/completions", {"model": "m", "messages": []}, "messages"),
            (
                "/v1/chat/completions",
                {"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 3},
                "requires logprobs",
            ),
        ],
    )
    async def test_invalid_requests_are_rejected_and_recorded(
        self, path: str, body: dict[str, Any], message: str
    ) -> None:
        """A malformed request gets 400 and is listed in server.errors."""
        async with FakeOpenAIServer(model="m") as server:
            status, reply = await _post(server, path, body)
        assert status == 400
        assert message in reply["error"]["message"]
        assert len(server.errors) == 1

    async def test_unknown_model_is_404(self) -> None:
        """A model the server does not serve is answered 404, like vLLM."""
        async with FakeOpenAIServer(model="m") as server:
            status, _ = await _post(server, "/v1/completions", {"model": "x", "prompt": "p"})
        assert status == 404

    async def test_ratelimit_mode_sends_retry_after(self) -> None:
        """The /ratelimit route answers 429 with a Retry-After header."""
        async with (
            FakeOpenAIServer(model="m", retry_after_s=3) as server,
            aiohttp.ClientSession() as session,
            session.post(
                server.mode_url("ratelimit") + "/v1/completions",
                json={"model": "m", "prompt": "p"},
            ) as resp,
        ):
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "3"

    async def test_completion_choices_are_prompt_major(self) -> None:
        """Choice i*n+j is sample j of prompt i."""
        async with FakeOpenAIServer(model="m") as server:
            server.default = lambda prompt, i: f"{prompt}{i}"
            _, reply = await _post(
                server, "/v1/completions", {"model": "m", "prompt": ["a", "b"], "n": 2}
            )
        assert [c["text"] for c in reply["choices"]] == ["a0", "a1", "b0", "b1"]
        assert [c["index"] for c in reply["choices"]] == [0, 1, 2, 3]
