"""Against a real vLLM server: runs only when CODEKILN_TEST_VLLM_URL is set."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from codekiln.synth.autods import AutoDSScorer
from codekiln.synth.config import SynthConfig
from codekiln.synth.job import run_synthesis
from codekiln.synth.llm import LLMClient, LLMConfig, SamplingParams

VLLM_URL = os.environ.get("CODEKILN_TEST_VLLM_URL")

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        not VLLM_URL, reason="set CODEKILN_TEST_VLLM_URL=http://host:port to run against vLLM"
    ),
]


@pytest.fixture
async def vllm() -> AsyncIterator[LLMClient]:
    assert VLLM_URL is not None
    async with LLMClient(LLMConfig(endpoints=(VLLM_URL,))) as client:
        await client.wait_ready(timeout_s=120)
        yield client


async def test_completion_batch_with_logprobs(vllm: LLMClient) -> None:
    """A prompt list with n=2 and logprobs comes back grouped, with usage."""
    params = SamplingParams(n=2, temperature=0.8, max_tokens=16, seed=1, logprobs=True,
                            top_logprobs=5)  # fmt: skip
    out = await vllm.complete(["def add(a, b):\n", "def fib(n):\n"], params, deadline_s=120)
    assert len(out.texts(0)) == 2
    assert len(out.texts(1)) == 2
    assert out.usage.completion_tokens > 0
    assert all(c.logprobs for c in out.choices)


async def test_autods_scores_in_unit_interval(vllm: LLMClient) -> None:
    """AutoDS gets a YES/NO probability from the chat logprobs of a real model."""
    result = await AutoDSScorer(vllm, "code_quality").score(
        "def add(a, b):\n    '''Return the sum of a and b.'''\n    return a + b\n"
    )
    assert 0.0 <= result.score <= 1.0
    assert set(result.answers) == {"code_educational", "code_self_contained", "code_correct"}


async def test_synthesis_job_runs(tmp_path: Path, data_dir: Path) -> None:
    """The whole job completes against a real model and accounts for every seed."""
    from tests.synth.test_job import write_corpus

    assert VLLM_URL is not None
    config = SynthConfig(max_seeds=2, generators=("textbook", "snippets"), deadline_s=300)
    report = await asyncio.to_thread(
        run_synthesis, write_corpus(tmp_path), tmp_path / "out", VLLM_URL, None,
        config=config, data_dir=data_dir,
    )  # fmt: skip
    for name in ("textbook", "snippets"):
        g = report["generators"][name]
        assert g["kept"] + sum(g["dropped"].values()) >= g["seeds"]
    assert report["llm"][next(iter(report["llm"]))]["completion_tokens"] > 0
