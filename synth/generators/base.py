"""Async generator stages: the stream stage contract, with per-record coroutines.

A generator implements ``async def agenerate(record) -> list[Record]``: the samples it made
from one seed (kept, or returned with ``drop_reason`` set when they failed execution), never
an empty list without a reason. The stage runs up to ``concurrency`` seeds of a batch at once
on the :class:`SynthContext`'s private event loop, so the stream runtime can drive it like any
other stage from its stage thread (``process(batch)``), and the synthesis job can ``await
aprocess(batch)`` directly.

Failures are quarantined with their reason on the seed record, never lost:

- ``<stage>:parse:<rule>``   the model output failed the prompt's parser (raw output kept)
- ``<stage>:llm:<Error>``    the LLM call failed for good (after retries, or fatal)
- ``<stage>:exec:sandbox_error`` the sandbox could not judge the sample
- ``<stage>:error:<Error>``  anything else (a bug), with the message
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from codekiln.sandbox.client import SandboxClient
from codekiln.stream.record import Record, record_id
from codekiln.stream.stage import Stage
from prometheus_client import Counter

from ..errors import ConfigError, ExecutionError, LLMError, ParseError
from ..execution import ExecutionFilter, Verdict
from ..llm import LLMClient, LLMConfig
from ..portal import LoopThread
from ..prompts import PromptTemplate, load_prompt

__all__ = ["AsyncStage", "SynthContext", "synth_record"]

_SAMPLES = Counter(
    "codekiln_synth_samples",
    "Samples out of synthesis stages, by stage and outcome (kept or the drop reason)",
    ["stage", "outcome"],
)


@dataclass
class SynthContext:
    """What generator stages share: the LLM client, the sandbox client, their event loop."""

    llm: LLMClient
    execution: ExecutionFilter | None
    portal: LoopThread
    prompt_dir: Path | None = None
    deadline_s: float | None = 600.0
    samples_per_seed: int = 1
    seed: int = 0
    _stack: contextlib.AsyncExitStack | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        llm_config: LLMConfig,
        *,
        sandbox_url: str | None = None,
        sandbox_token: str | None = None,
        exec_timeout_s: float = 10.0,
        exec_memory_mb: int = 256,
        sandbox_retries: int = 5,
        **settings: Any,
    ) -> SynthContext:
        """Start a private loop and open the clients on it (close with :meth:`close`)."""
        portal = LoopThread()

        async def enter() -> tuple[contextlib.AsyncExitStack, LLMClient, ExecutionFilter | None]:
            stack = contextlib.AsyncExitStack()
            llm = await stack.enter_async_context(LLMClient(llm_config))
            execution = None
            if sandbox_url:
                sandbox = await stack.enter_async_context(
                    SandboxClient(sandbox_url, token=sandbox_token, retries=sandbox_retries)
                )
                execution = ExecutionFilter(
                    sandbox, timeout_s=exec_timeout_s, memory_mb=exec_memory_mb
                )
            return stack, llm, execution

        try:
            stack, llm, execution = portal.call(enter())
        except BaseException:
            portal.close()
            raise
        return cls(llm=llm, execution=execution, portal=portal, _stack=stack, **settings)

    def close(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            self.portal.call(stack.aclose())
        self.portal.close()


def synth_record(seed: Record, generator: str, index: int, text: str, **meta: Any) -> Record:
    """A new sample made from ``seed``; its id is stable (seed id, generator, sample index)."""
    return Record(
        id=record_id(f"synth:{generator}", f"{seed.id}:{index}"),
        text=text,
        lang=str(meta.pop("lang", seed.lang)),
        path=seed.path,
        repo=seed.repo,
        source=f"synth:{generator}",
        meta={"generator": generator, "seed_id": seed.id, **meta},
    )


class AsyncStage(Stage):
    """Base of the LLM-driven stages; see the module docstring."""

    name: ClassVar[str] = "async_stage"
    #: Whether the stage calls the LLM (a stage that does not may run without a context).
    needs_llm: bool = True
    #: Prompt files the stage uses; loaded (and validated) once, in :meth:`open`.
    prompts: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        context: SynthContext | None = None,
        llm_url: str | None = None,
        sandbox_url: str | None = None,
        sandbox_token: str | None = None,
        concurrency: int = 32,
        prompt_dir: str | None = None,
    ) -> None:
        if self.needs_llm and context is None and not llm_url:
            raise ConfigError(f"{self.name}: needs llm_url (or a SynthContext)")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"{self.name}.concurrency must be an integer >= 1")
        self._context = context
        self._owns_context = False
        self._llm_url = llm_url
        self._sandbox_url = sandbox_url
        self._sandbox_token = sandbox_token
        self.concurrency = concurrency
        self._prompt_dir = Path(prompt_dir) if prompt_dir else None
        self.counts: dict[str, int] = {}
        self._templates: dict[str, PromptTemplate] = {}

    @property
    def context(self) -> SynthContext:
        if self._context is None:
            assert self._llm_url is not None
            self._context = SynthContext.open(
                LLMConfig(endpoints=tuple(self._llm_url.split(","))),
                sandbox_url=self._sandbox_url,
                sandbox_token=self._sandbox_token,
                prompt_dir=self._prompt_dir,
            )
            self._owns_context = True
        return self._context

    def open(self, work_dir: Path) -> None:
        if self.needs_llm or self._context is not None:
            _ = self.context
        for name in self.prompts:
            self.prompt(name)

    def finish(self) -> list[Record]:
        if self._owns_context and self._context is not None:
            self._context.close()
            self._context = None
        return []

    def report(self) -> dict[str, Any]:
        return dict(sorted(self.counts.items()))

    def prompt(self, name: str) -> PromptTemplate:
        """The loaded template (reads the file only the first time; :meth:`open` preloads)."""
        template = self._templates.get(name)
        if template is None:
            prompt_dir = self._prompt_dir or (self._context.prompt_dir if self._context else None)
            template = self._templates[name] = load_prompt(name, prompt_dir)
        return template

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    # -- the work -------------------------------------------------------------------------

    async def agenerate(self, record: Record) -> list[Record]:
        raise NotImplementedError

    async def aprocess(self, batch: list[Record]) -> list[Record]:
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(record: Record) -> list[Record]:
            async with semaphore:
                try:
                    out = await self.agenerate(record)
                except Exception as exc:
                    return [self._fail(record, exc)]
                if not out:
                    record.drop_reason = f"{self.name}:no_output"
                    return [record]
                return out

        results = await asyncio.gather(*(one(r) for r in batch))
        out = [r for rs in results for r in rs]
        for r in out:
            outcome = "kept" if r.drop_reason is None else r.drop_reason
            self.count(outcome)
            _SAMPLES.labels(self.name, outcome).inc()
        return out

    def process(self, batch: list[Record]) -> list[Record]:
        if not self.needs_llm and self._context is None and not self._llm_url:
            return asyncio.run(self.aprocess(batch))  # nothing to share a loop with
        return self.context.portal.call(self.aprocess(batch))

    def _fail(self, record: Record, exc: BaseException) -> Record:
        if isinstance(exc, ParseError):
            record.drop_reason = f"{self.name}:parse:{exc.rule}"
            raw = getattr(exc, "raw_output", None)
            if raw is not None:
                record.meta["raw_output"] = str(raw)[:4000]
        elif isinstance(exc, LLMError):
            record.drop_reason = f"{self.name}:llm:{type(exc).__name__}"
        elif isinstance(exc, ExecutionError):
            record.drop_reason = f"{self.name}:exec:sandbox_error"
        else:
            record.drop_reason = f"{self.name}:error:{type(exc).__name__}"
        record.meta["error"] = str(exc)[:500]
        return record

    # -- helpers for subclasses -------------------------------------------------------------

    async def ask(
        self, template: PromptTemplate, values: dict[str, str], *, n: int | None = None
    ) -> list[tuple[str, dict[str, str] | ParseError]]:
        """Chat once with ``n`` samples; each sample parsed (or its ParseError)."""
        ctx = self.context
        params = template.params(n=n or ctx.samples_per_seed)
        if ctx.seed:
            params = template.params(n=params.n, seed=ctx.seed)
        out = await ctx.llm.chat(template.messages(**values), params, deadline_s=ctx.deadline_s)
        parsed: list[tuple[str, dict[str, str] | ParseError]] = []
        for choice in out.choices:
            try:
                if choice.finish_reason == "length":
                    # Cut off at max_tokens: even if it parses, the end is missing.
                    raise ParseError("truncated", "the answer hit max_tokens")
                parsed.append((choice.text, template.parse(choice.text)))
            except ParseError as exc:
                exc.raw_output = choice.text  # type: ignore[attr-defined]
                parsed.append((choice.text, exc))
        return parsed

    async def judge(self, code: str, tests: str, language: str = "python") -> Verdict | None:
        """The sandbox verdict, or ``None`` when this run has no sandbox (execution off)."""
        execution = self.context.execution
        if execution is None:
            return None
        return await execution.judge(code, tests, language)

    async def each_answer(
        self,
        seed: Record,
        template: PromptTemplate,
        values: dict[str, str],
        build: Callable[[int, dict[str, str]], Awaitable[Record]],
    ) -> list[Record]:
        """One record per sample of one chat (:meth:`ask`), in sample order: ``build(index,
        parsed)`` for a parsed answer, :meth:`parse_failure` for one that failed its parser."""
        out = []
        for i, (raw, parsed) in enumerate(await self.ask(template, values)):
            if isinstance(parsed, ParseError):
                out.append(self.parse_failure(seed, i, raw, parsed))
            else:
                out.append(await build(i, parsed))
        return out

    def parse_failure(self, seed: Record, index: int, raw: str, exc: ParseError) -> Record:
        """A dropped ``parse_failure`` sample: ``<stage>:parse:<rule>``, the raw answer kept."""
        out = synth_record(seed, self.name, index, raw, kind="parse_failure")
        out.drop_reason = f"{self.name}:parse:{exc.rule}"
        out.meta["error"] = str(exc)[:500]
        return out

    async def check_execution(
        self, sample: Record, code: str, tests: str, language: str = "python"
    ) -> Record:
        """Judge ``code`` against ``tests``: the verdict goes to ``meta["execution"]``, a failure
        (or no sandbox: ``<stage>:exec:no_sandbox``) to the sample's ``drop_reason``. The
        sample, so that a builder can return it checked."""
        verdict = await self.judge(code, tests, language)
        if verdict is None:
            sample.drop_reason = f"{self.name}:exec:no_sandbox"
            return sample
        sample.meta["execution"] = verdict.detail
        if not verdict.passed:
            sample.drop_reason = f"{self.name}:{verdict.rule}"
        return sample
