"""Execution filtering against the real sandbox service (Docker engine + sandbox image)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from codekiln.sandbox.client import SandboxClient
from codekiln.stream.record import Record
from codekiln.synth.config import SynthConfig
from codekiln.synth.execution import ExecutionFilter
from codekiln.synth.generators.annealing import SnippetStage
from codekiln.synth.generators.base import SynthContext
from codekiln.synth.job import run_synthesis

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fixtures.sandbox import SandboxService
from tests.synth import scripted
from tests.synth.helpers import fast_config
from tests.synth.test_job import write_corpus

pytestmark = pytest.mark.docker

SEED = Record(id="s" * 32, text="def f(xs):\n    return [x * 2 for x in xs]\n", lang="python")


class TestExecutionFilter:
    async def test_passing_tests(self, sandbox_client: SandboxClient) -> None:
        """Code whose asserts hold passes."""
        verdict = await ExecutionFilter(sandbox_client).judge(
            "def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3\nassert add(0, 0) == 0\n"
        )
        assert verdict.passed
        assert verdict.detail["tests_passed"] == 2

    async def test_failing_tests(self, sandbox_client: SandboxClient) -> None:
        """A wrong answer fails with the rule exec:failed."""
        verdict = await ExecutionFilter(sandbox_client).judge(
            "def add(a, b):\n    return a - b\n", "assert add(1, 2) == 3\n"
        )
        assert not verdict.passed
        assert verdict.rule == "exec:failed"

    async def test_endless_loop_times_out(self, sandbox_client: SandboxClient) -> None:
        """Code that never ends is stopped and judged exec:timeout."""
        verdict = await ExecutionFilter(sandbox_client, timeout_s=1).judge(
            "def spin():\n    while True:\n        pass\n", "assert spin() is None\n"
        )
        assert verdict.rule == "exec:timeout"

    async def test_javascript_program_with_checks(self, sandbox_client: SandboxClient) -> None:
        """Other languages run code then test program; a non-zero exit fails."""
        judge = ExecutionFilter(sandbox_client).judge
        code = "function add(a, b) { return a + b; }"
        ok = await judge(code, "if (add(1, 2) !== 3) { process.exit(1); }", "javascript")
        bad = await judge(code, "if (add(1, 2) !== 4) { process.exit(1); }", "javascript")
        assert ok.passed
        assert bad.rule == "exec:failed"


@pytest.fixture
def context(fake_llm: FakeOpenAIServer, sandbox_service: SandboxService) -> Iterator[SynthContext]:
    ctx = SynthContext.open(
        fast_config(fake_llm.url), sandbox_url=sandbox_service.url,
        sandbox_token=sandbox_service.token,
    )  # fmt: skip
    yield ctx
    ctx.close()


class TestSnippets:
    async def test_passing_snippet_is_kept(
        self, fake_llm: FakeOpenAIServer, context: SynthContext
    ) -> None:
        """A generated function whose tests pass in the sandbox is kept, with the verdict."""
        fake_llm.route("self-contained Python function", scripted.SNIPPET)
        (out,) = await asyncio.to_thread(SnippetStage(context=context).process, [SEED])
        assert out.drop_reason is None
        assert out.meta["execution"]["status"] == "passed"

    async def test_failing_snippet_is_dropped(
        self, fake_llm: FakeOpenAIServer, context: SynthContext
    ) -> None:
        """A generated function whose tests fail is dropped as exec:failed."""
        fake_llm.route("self-contained Python function", scripted.BROKEN_SNIPPET)
        seed = Record.from_json(SEED.to_json())
        (out,) = await asyncio.to_thread(SnippetStage(context=context).process, [seed])
        assert out.drop_reason == "synth_snippets:exec:failed"


async def test_job_with_sandbox(
    tmp_path: Path, fake_llm: FakeOpenAIServer, sandbox_service: SandboxService, data_dir: Path
) -> None:
    """With the sandbox on, executed samples reach the annealing corpus and the SFT mixture."""
    # AutoDS keeps the top half of the 2 seeds (1); every generator answers from the script.
    scripted.install(fake_llm)
    config = SynthConfig(max_seeds=2, packages=("heapq",), apis_per_package=50,
                         generators=("snippets", "edu", "package"))  # fmt: skip
    report = await asyncio.to_thread(
        run_synthesis, write_corpus(tmp_path), tmp_path / "out", fake_llm.url,
        sandbox_service.url, config=config, sandbox_token=sandbox_service.token,
        data_dir=data_dir,
    )  # fmt: skip
    assert report["execution_filter"] is True
    assert report["generators"]["snippets"]["kept"] == 1
    assert report["generators"]["edu"]["kept"] == 1
    # the scripted answer uses heapq.nlargest: only that API's problem survives the checks
    package = report["generators"]["package"]
    assert package["kept"] == 1
    assert set(package["dropped"]) == {"synth_package:api_not_used"}
    assert report["sft"]["stages"]["stage2"]["by_source"] == {"educational": 1, "package": 1}
