"""Generator stages against the fake OpenAI server (no sandbox: execution is off here)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from codekiln.stream.record import Record
from codekiln.synth.errors import ConfigError
from codekiln.synth.generators.annealing import SnippetStage, TextbookStage
from codekiln.synth.generators.base import SynthContext
from codekiln.synth.generators.instructions import DiverseStage, same_code
from codekiln.synth.llm import LLMConfig
from prometheus_client import REGISTRY

from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.synth import scripted
from tests.synth.helpers import fast_config

SEED = Record(id="s" * 32, text="def f(xs):\n    return [x * 2 for x in xs]\n", lang="python")


@pytest.fixture
def context(fake_llm: FakeOpenAIServer) -> Iterator[SynthContext]:
    """A synth context (private loop, LLM client) pointed at the fake server; no sandbox."""
    ctx = SynthContext.open(fast_config(fake_llm.url, max_retries=1))
    yield ctx
    ctx.close()


def _seed() -> Record:
    return Record.from_json(SEED.to_json())


class TestStages:
    async def test_textbook_via_process(
        self, fake_llm: FakeOpenAIServer, context: SynthContext
    ) -> None:
        """The sync process() path (what the stream runtime calls) yields a textbook record."""
        fake_llm.route("textbook", scripted.TEXTBOOK)
        stage = TextbookStage(context=context)
        labels = {"stage": "synth_textbook", "outcome": "kept"}
        before = REGISTRY.get_sample_value("codekiln_synth_samples_total", labels) or 0.0
        (out,) = await asyncio.to_thread(stage.process, [_seed()])
        assert REGISTRY.get_sample_value("codekiln_synth_samples_total", labels) == before + 1
        assert out.drop_reason is None
        assert out.lang == "markdown"
        assert out.source == "synth:synth_textbook"
        assert out.meta["seed_id"] == SEED.id

    async def test_ids_are_stable(self, fake_llm: FakeOpenAIServer, context: SynthContext) -> None:
        """The same seed gives the same sample id in two runs."""
        fake_llm.route("textbook", scripted.TEXTBOOK)
        stage = TextbookStage(context=context)
        first = await asyncio.to_thread(stage.process, [_seed()])
        second = await asyncio.to_thread(stage.process, [_seed()])
        assert first[0].id == second[0].id

    async def test_parse_failure_is_quarantined(
        self, fake_llm: FakeOpenAIServer, context: SynthContext
    ) -> None:
        """An output that fails its parser is dropped with the rule and the raw text kept."""
        fake_llm.route("self-contained Python function", "I cannot help with that.")
        (out,) = await asyncio.to_thread(SnippetStage(context=context).process, [_seed()])
        assert out.drop_reason == "synth_snippets:parse:missing_code"
        assert out.text == "I cannot help with that."

    async def test_llm_failure_is_quarantined(self, fake_llm: FakeOpenAIServer) -> None:
        """A generation that fails for good quarantines the seed with the error type."""
        ctx = SynthContext.open(
            fast_config(fake_llm.mode_url("fail"), model="fake-coder", max_retries=1)
        )
        try:
            (out,) = await asyncio.to_thread(TextbookStage(context=ctx).process, [_seed()])
        finally:
            ctx.close()
        assert out.id == SEED.id
        assert out.drop_reason == "synth_textbook:llm:LLMRetriesExhausted"
        assert "HTTP 500" in out.meta["error"]

    async def test_without_sandbox_nothing_unverified_is_kept(
        self, fake_llm: FakeOpenAIServer, context: SynthContext
    ) -> None:
        """With execution off, snippets are dropped as exec:no_sandbox, never kept unchecked."""
        fake_llm.route("self-contained Python function", scripted.SNIPPET)
        (out,) = await asyncio.to_thread(SnippetStage(context=context).process, [_seed()])
        assert out.drop_reason == "synth_snippets:exec:no_sandbox"
        assert out.meta["tests"].startswith("assert")

    async def test_samples_per_seed(self, fake_llm: FakeOpenAIServer) -> None:
        """n samples per seed become n records with distinct ids."""
        fake_llm.route("textbook", scripted.TEXTBOOK)
        ctx = SynthContext.open(fast_config(fake_llm.url), samples_per_seed=3)
        try:
            out = await asyncio.to_thread(TextbookStage(context=ctx).process, [_seed()])
        finally:
            ctx.close()
        assert len({r.id for r in out}) == 3
        assert fake_llm.requests[-1].body["n"] == 3

    async def test_stage_opens_its_own_context_from_options(
        self, fake_llm: FakeOpenAIServer
    ) -> None:
        """Built the way the stream registry builds stages (options only), it runs and closes."""
        fake_llm.route("textbook", scripted.TEXTBOOK)
        stage = TextbookStage(llm_url=fake_llm.url)
        await asyncio.to_thread(stage.open, Path("."))
        (out,) = await asyncio.to_thread(stage.process, [_seed()])
        assert await asyncio.to_thread(stage.finish) == []
        assert out.drop_reason is None

    def test_stage_needs_an_llm(self) -> None:
        """A generator without llm_url or context is a configuration error."""
        with pytest.raises(ConfigError, match="llm_url"):
            SnippetStage()

    async def test_diverse_spec_is_deterministic(
        self, fake_llm: FakeOpenAIServer, context: SynthContext
    ) -> None:
        """The random task spec depends only on the seed record (and the run seed)."""
        fake_llm.route("Seed text from the web", scripted.DIVERSE)
        text = (
            "Sorting algorithms arrange the items of a list in order, and the best ones run "
            "in n log n time on average."
        )
        web = Record(id="w" * 32, text=text, lang="markdown")
        stage = DiverseStage(context=context)
        first = (await asyncio.to_thread(stage.process, [Record.from_json(web.to_json())]))[0]
        second = (await asyncio.to_thread(stage.process, [Record.from_json(web.to_json())]))[0]
        spec = first.meta["spec"]
        assert spec == second.meta["spec"]
        # the scripted answer is Python: kept for execution if Python was drawn, else dropped
        expected = "exec:no_sandbox" if spec["language"] == "python" else "wrong_language"
        assert first.drop_reason == f"synth_diverse:{expected}"


class TestAnnotationCheck:
    def test_comments_only_is_same_code(self) -> None:
        """Adding comments does not change the program."""
        assert same_code(
            "def f():\n    return 1\n", "def f():\n    # one\n    return 1\n", "python"
        )

    def test_changed_code_is_detected(self) -> None:
        """An 'annotation' that edits the code is rejected."""
        assert not same_code("int x = 1;", "// x\nint x = 2;", "cpp")


def test_llm_config_rejects_bad_url() -> None:
    """A generator context cannot be built from a non-HTTP endpoint."""
    with pytest.raises(ConfigError):
        LLMConfig(endpoints=("localhost:8000",))


async def test_autods_stage_drops_below_threshold(
    fake_llm: FakeOpenAIServer, context: SynthContext
) -> None:
    """The streaming AutoDS stage keeps high scores and drops low ones with their score."""
    from codekiln.synth.generators.scoring import AutoDSStage

    fake_llm.route("GOOD", scripted.yes(-0.01, -5.0))
    fake_llm.route("BAD", scripted.yes(-5.0, -0.01))
    stage = AutoDSStage(context=context, threshold=0.5)
    await asyncio.to_thread(stage.open, Path("."))
    good = Record(id="g" * 32, text="GOOD code")
    bad = Record(id="b" * 32, text="BAD code")
    out = await asyncio.to_thread(stage.process, [good, bad])
    assert [r.drop_reason for r in out] == [None, "autods:below_threshold"]
    assert out[0].meta["autods"]["score"] > 0.9


async def test_unreachable_sandbox_quarantines_as_sandbox_error(
    fake_llm: FakeOpenAIServer,
) -> None:
    """A sandbox that cannot be reached quarantines the sample; it is not judged failed."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fake_llm.route("self-contained Python function", scripted.SNIPPET)
    ctx = SynthContext.open(fast_config(fake_llm.url), sandbox_url=f"http://127.0.0.1:{port}",
                            sandbox_retries=0)  # fmt: skip
    try:
        (out,) = await asyncio.to_thread(SnippetStage(context=ctx).process, [_seed()])
    finally:
        ctx.close()
    assert out.drop_reason == "synth_snippets:exec:sandbox_error"
    assert out.id == SEED.id


async def test_truncated_answer_is_dropped(
    fake_llm: FakeOpenAIServer, context: SynthContext
) -> None:
    """An answer cut off at max_tokens is dropped as parse:truncated even if it parses."""
    fake_llm.route("textbook", Reply(scripted.TEXTBOOK, finish_reason="length"))
    (out,) = await asyncio.to_thread(TextbookStage(context=context).process, [_seed()])
    assert out.drop_reason == "synth_textbook:parse:truncated"
