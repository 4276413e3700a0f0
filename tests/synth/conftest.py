"""Fixtures for synth tests: a fake OpenAI server on port 0 and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from codekiln.synth.llm import LLMClient

from tests.fakes.openai_server import FakeOpenAIServer
from tests.synth.helpers import fast_config


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeOpenAIServer]:
    """A fake OpenAI server; the test fails if any request it received was invalid."""
    async with FakeOpenAIServer(model="fake-coder", slow_s=5.0, retry_after_s=0.05) as server:
        yield server
        server.assert_clean()


@pytest.fixture
async def llm(fake_llm: FakeOpenAIServer) -> AsyncIterator[LLMClient]:
    async with LLMClient(fast_config(fake_llm.url)) as client:
        yield client
