"""Fixtures for synth tests: a fake OpenAI server on port 0 and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from codekiln.synth.llm import LLMClient, LLMConfig

from tests.fakes.openai_server import FakeOpenAIServer


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeOpenAIServer]:
    """A fake OpenAI server; the test fails if any request it received was invalid."""
    async with FakeOpenAIServer(model="fake-coder", slow_s=5.0, retry_after_s=0.05) as server:
        yield server
        server.assert_clean()


def fast_config(*urls: str, **overrides: object) -> LLMConfig:
    """A client config with short backoffs, so retry tests run quickly."""
    settings: dict[str, object] = {
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 10.0,
        "breaker_reset_s": 0.2,
    }
    settings.update(overrides)
    return LLMConfig(endpoints=tuple(urls), **settings)  # type: ignore[arg-type]


@pytest.fixture
async def llm(fake_llm: FakeOpenAIServer) -> AsyncIterator[LLMClient]:
    async with LLMClient(fast_config(fake_llm.url)) as client:
        yield client
