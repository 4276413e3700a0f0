"""The synthesis job: corpus seeds -> generators -> execution filter -> decontam -> dedup ->
annealing corpus and two-stage SFT mixture.

``run_synthesis(corpus_dir, out_dir, llm_url, sandbox_url, ...)`` is what ``codekiln-stream``
calls after its pipeline when ``CODEKILN_LLM_URL`` is set, and what ``codekiln-synth run``
calls. It blocks (it runs its own event loop in a thread, so it may be called from anywhere;
from async code use ``await asyncio.to_thread(run_synthesis, ...)``).

Layout of ``out_dir``::

    annealing/part-*.jsonl.zst     snippets (sandbox-passing) and textbooks, as records
    sft/stage1/, sft/stage2/       chat-format SFT mixture (see codekiln.synth.mixture)
    sft/manifest.json
    rejects/part-*.jsonl.zst       every dropped or quarantined record, with ``reason``
    seeds.jsonl                    the scored seeds (AutoDS score, per-question p, selected)
    report.json, report.md

Steps: (1) seeds: code records from the corpus (a deterministic sample by record id) and
prose records for diverse synthesis; (2) AutoDS scores the code seeds, the top fraction /
above-threshold ones are selected; (3) generators run as async stages with bounded
concurrency; (4) decontamination against HumanEval(+)/MBPP(+); (5) the stream's exact and
fuzzy dedup stages, separately for annealing and SFT samples; (6) writers.

The seeds live in :mod:`.seeds`, the cache of finished steps (what a rerun reuses) in
:mod:`.step_cache`, the report's rendering in :mod:`.report`; this module drives the steps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from codekiln.sandbox.errors import SandboxError
from codekiln.stream import registry
from codekiln.stream.record import Record
from codekiln.stream.stage import Stage
from codekiln.stream.writers.jsonl import JsonlZstWriter

from codekiln.cli_common import check_sandbox

from .autods import AutoDSScorer, select
from .config import SynthConfig
from .decontam import BenchmarkIndex, DecontamStage, load_benchmarks
from .errors import ConfigError, ExecutionError, LLMError, ParseError
from .generators.annealing import SnippetStage, TextbookStage
from .generators.base import AsyncStage, SynthContext
from .generators.ingest import IngestStage, read_instructions
from .generators.instructions import DiverseStage, EducationalStage, PackageStage
from .llm import LLMConfig
from .mixture import SFTMixtureWriter
from .packages import api_docs
from .report import nothing_generated, render_report
from .seeds import iter_corpus, pick_seeds
from .step_cache import inputs_fingerprint, load_cache, save_cache

__all__ = ["DISABLED_NOTE", "run_synthesis"]

DISABLED_NOTE = (
    "synthesis stages are off (no LLM endpoint). Turn them on with "
    "CODEKILN_LLM_URL=http://HOST:8000 (an OpenAI-compatible vLLM server; several: "
    "comma-separated) and CODEKILN_SANDBOX_URL (+ CODEKILN_SANDBOX_TOKEN) for the execution "
    "filter, or the synth: section of the config file; see docs/synth.md."
)
_BATCH = 64


class _Outputs:
    """Live and dropped records collected per destination, plus drop counts."""

    def __init__(self) -> None:
        self.annealing: list[Record] = []
        self.sft: list[Record] = []
        self.rejects: list[Record] = []
        self.reasons: Counter[str] = Counter()

    def route(self, records: Iterable[Record], dest: list[Record]) -> None:
        for r in records:
            if r.drop_reason is None:
                dest.append(r)
            else:
                self.rejects.append(r)
                self.reasons[r.drop_reason] += 1


async def _drive(stage: Stage, records: Sequence[Record], work_dir: Path) -> list[Record]:
    """Run one stage over ``records`` in batches (the stage lifecycle), return all output."""
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    out: list[Record] = []
    if isinstance(stage, AsyncStage):
        await asyncio.to_thread(stage.open, work_dir)  # loads prompt files
        for i in range(0, len(records), _BATCH):
            out.extend(await stage.aprocess(list(records[i : i + _BATCH])))
        return out
    await asyncio.to_thread(stage.open, work_dir)
    for i in range(0, len(records), _BATCH):
        out.extend(await asyncio.to_thread(stage.process, list(records[i : i + _BATCH])))
    out.extend(await asyncio.to_thread(stage.finish))
    return out


async def _score_seeds(
    ctx: SynthContext, seeds: list[Record], config: SynthConfig, outputs: _Outputs, work: Path
) -> tuple[list[Record], list[dict[str, Any]]]:
    fingerprint = inputs_fingerprint(config.autods_questions, config.autods_api, config.prompt_dir,
                               ctx.llm.model,
                               [r.id for r in seeds])  # fmt: skip
    cache = work / "autods" / "scored.jsonl"
    cached = await asyncio.to_thread(load_cache, cache, fingerprint)
    if cached is not None:
        seeds = cached
    else:
        scorer = await asyncio.to_thread(
            AutoDSScorer,
            ctx.llm,
            config.autods_questions,
            prompt_dir=ctx.prompt_dir,
            deadline_s=config.deadline_s,
            api=config.autods_api,
        )
        if seeds:
            # A tokenizer that splits YES/NO would score every seed 0 or 1: refuse it once,
            # before any question is asked (ConfigError, exit 2).
            await scorer.check_tokenizer()
        semaphore = asyncio.Semaphore(config.concurrency)

        async def one(record: Record) -> None:
            async with semaphore:
                try:
                    result = await scorer.score(record.text)
                except (ParseError, LLMError) as exc:
                    rule = exc.rule if isinstance(exc, ParseError) else f"llm:{type(exc).__name__}"
                    record.drop_reason = f"autods:{rule}"
                    record.meta["error"] = str(exc)[:500]
                    return
                record.meta["autods"] = {"score": result.score, "answers": result.answers}

        await asyncio.gather(*(one(r) for r in seeds))
        await asyncio.to_thread(save_cache, cache, fingerprint, seeds)
    scored = [(r, float(r.meta["autods"]["score"])) for r in seeds if r.drop_reason is None]
    outputs.route([r for r in seeds if r.drop_reason is not None], [])
    keep = (
        select([s for _, s in scored], threshold=config.autods_threshold,
               top_fraction=config.autods_top_fraction)
        if scored else []
    )  # fmt: skip
    selected, rows = [], []
    for (record, score), kept in zip(scored, keep, strict=True):
        rows.append({"id": record.id, "path": record.path, "score": score,
                     "answers": record.meta["autods"]["answers"], "selected": kept})  # fmt: skip
        if kept:
            selected.append(record)
    return selected, rows


def _check_max_tokens(ctx: SynthContext, stages: Sequence[AsyncStage]) -> None:
    """Every prompt's max_tokens fits the served context, or a ConfigError before any call."""
    served = ctx.llm.max_model_len
    if served is None:
        return
    over = sorted(
        {
            f"{name} (max_tokens {tokens})"
            for stage in stages
            for name in stage.prompts
            if (tokens := stage.prompt(name).params().max_tokens) > served
        }
    )
    if over:
        raise ConfigError(
            f"the server's context is max_model_len={served} tokens, less than the max_tokens "
            f"of prompt {', '.join(over)}: serve a longer context (vllm serve --max-model-len) "
            "or lower max_tokens in a prompt_dir copy of the prompt"
        )


def _copy(records: Iterable[Record]) -> list[Record]:
    return [Record.from_json(r.to_json()) for r in records]


async def _synthesise(
    ctx: SynthContext,
    *,
    corpus_dir: Path,
    out_dir: Path,
    config: SynthConfig,
    data_dir: Path,
    instructions: Sequence[Path],
) -> dict[str, Any]:
    work = out_dir / ".work"
    outputs = _Outputs()
    report: dict[str, Any] = {"generators": {}, "skipped": {}}
    code_seeds, prose_seeds = await asyncio.to_thread(
        lambda: pick_seeds(iter_corpus(corpus_dir), config)
    )
    report["seeds"] = {"code": len(code_seeds), "prose": len(prose_seeds)}
    selected, seed_rows = await _score_seeds(ctx, code_seeds, config, outputs, work)
    report["seeds"]["selected"] = len(selected)
    report["autods"] = {
        "questions": config.autods_questions,
        "threshold": config.autods_threshold,
        "top_fraction": config.autods_top_fraction,
        "scored": len(seed_rows),
        "mean_score": round(sum(r["score"] for r in seed_rows) / len(seed_rows), 4)
        if seed_rows else None,
    }  # fmt: skip
    common: dict[str, Any] = {"context": ctx, "concurrency": config.concurrency}
    plan: list[tuple[str, AsyncStage, list[Record], str]] = []
    wanted = set(config.generators)
    if "snippets" in wanted:
        plan.append(("snippets", SnippetStage(**common), _copy(selected), "annealing"))
    if "textbook" in wanted:
        plan.append(("textbook", TextbookStage(**common), _copy(selected), "annealing"))
    if "edu" in wanted:
        plan.append(("edu", EducationalStage(**common), _copy(selected), "sft"))
    if "package" in wanted:
        docs = await asyncio.to_thread(
            api_docs, config.packages, max_per_package=config.apis_per_package
        )
        plan.append(("package", PackageStage(**common), docs, "sft"))
    if "diverse" in wanted:
        if prose_seeds:
            plan.append(("diverse", DiverseStage(**common), _copy(prose_seeds), "sft"))
        else:
            report["skipped"]["diverse"] = f"no prose seeds (langs {list(config.web_langs)})"
    if "ingest" in wanted:
        rows = await asyncio.to_thread(
            lambda: [r for path in instructions for r in read_instructions(path)]
        )
        if rows:
            ingest = IngestStage(classifier=config.ingest_classifier,
                                 threshold=config.ingest_threshold, **common)  # fmt: skip
            outputs.route([r for r in rows if r.drop_reason is not None], [])
            plan.append(("ingest", ingest, [r for r in rows if r.drop_reason is None], "sft"))
        else:
            report["skipped"]["ingest"] = "no instruction files given (--instructions)"
    if ctx.execution is None:
        report["execution"] = "off: no sandbox URL, so samples that need execution are dropped"
    # What shapes a generator's output (connection settings do not).
    settings = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in ("llm_url", "sandbox_url", "data_dir")
    }
    _check_max_tokens(ctx, [generator for _, generator, _, _ in plan])
    for key, generator, seeds, dest in plan:
        start = time.perf_counter()
        # A finished generator's output is kept under .work/: a rerun after a crash (or a
        # kill) reuses it instead of paying for the generations again.
        fingerprint = inputs_fingerprint(key, settings, ctx.llm.model, [r.id for r in seeds],
                                   ctx.execution is not None)  # fmt: skip
        cache = work / key / "output.jsonl"
        produced = await asyncio.to_thread(load_cache, cache, fingerprint)
        if produced is None:
            produced = await _drive(generator, seeds, work / key)
            await asyncio.to_thread(save_cache, cache, fingerprint, produced)
        else:
            report.setdefault("reused", []).append(key)
        kept = [r for r in produced if r.drop_reason is None]
        outputs.route(produced, outputs.annealing if dest == "annealing" else outputs.sft)
        report["generators"][key] = {
            "seeds": len(seeds),
            "kept": len(kept),
            "dropped": dict(Counter(r.drop_reason for r in produced if r.drop_reason)),
            "seconds": round(time.perf_counter() - start, 2),
        }
    # decontamination, then the stream's own dedup stages, per destination
    post: dict[str, Any] = {}
    # One benchmark index for both destinations.
    index = await asyncio.to_thread(lambda: BenchmarkIndex(load_benchmarks(data_dir)))
    for dest_name in ("annealing", "sft"):
        records = getattr(outputs, dest_name)
        decontam = DecontamStage(
            data_dir=str(data_dir),
            max_overlap_ratio=config.decontam_max_overlap_ratio,
            max_overlap_count=config.decontam_max_overlap_count,
        )
        decontam.use_index(index)
        stages: list[tuple[str, Stage]] = [("decontam", decontam)]
        if config.dedup:
            # minhash computes the signatures fuzzy_dedup indexes (as in the stream pipeline)
            for name in ("exact_dedup", "minhash", "fuzzy_dedup"):
                if registry.available(name):
                    stages.append((name, registry.resolve(name)()))
                else:
                    post.setdefault("unavailable", []).append(name)
        steps: dict[str, Any] = {}
        for name, stage in stages:
            before = len(records)
            produced = await _drive(stage, records, work / dest_name / name)
            records = []
            outputs.route(produced, records)
            steps[name] = {"in": before, "out": len(records), **stage.report()}
        setattr(outputs, dest_name, records)
        post[dest_name] = steps
    report["post"] = post
    # writers
    await asyncio.to_thread(_write_outputs, out_dir, outputs, seed_rows, config, report)
    return report


def _write_outputs(
    out_dir: Path,
    outputs: _Outputs,
    seed_rows: list[dict[str, Any]],
    config: SynthConfig,
    report: dict[str, Any],
) -> None:
    annealing = JsonlZstWriter(out_dir / "annealing", prefix="part", max_records=50_000,
                               max_bytes=1 << 30)  # fmt: skip
    annealing.write(sorted(outputs.annealing, key=lambda r: r.id))
    annealing.commit()
    rejects = JsonlZstWriter(out_dir / "rejects", prefix="part", max_records=50_000,
                             max_bytes=1 << 30)  # fmt: skip
    rejects.write(sorted(outputs.rejects, key=lambda r: (r.drop_reason or "", r.id)))
    rejects.commit()
    mixture = SFTMixtureWriter(out_dir, weights=config.mixture_weights, seed=config.seed)
    for record in outputs.sft:
        mixture.add(record)
    report["sft"] = mixture.write()
    report["annealing"] = {"records": len(outputs.annealing), "shards": annealing.shards}
    report["rejects"] = {"records": len(outputs.rejects),
                         "reasons": dict(sorted(outputs.reasons.items()))}  # fmt: skip
    seeds_tmp = out_dir / ".seeds.jsonl.tmp"
    seeds_tmp.write_text("".join(json.dumps(r) + "\n" for r in seed_rows), encoding="utf-8")
    seeds_tmp.replace(out_dir / "seeds.jsonl")


def run_synthesis(
    corpus_dir: str | Path,
    out_dir: str | Path,
    llm_url: str,
    sandbox_url: str | None = None,
    *,
    config: SynthConfig | None = None,
    sandbox_token: str | None = None,
    data_dir: str | Path | None = None,
    instructions: Sequence[str | Path] = (),
    llm_config: LLMConfig | None = None,
) -> dict[str, Any]:
    """Run the whole synthesis job; returns the report (also written to report.json/.md).

    ``llm_url`` may list several endpoints, comma-separated. ``data_dir`` holds the benchmark
    files used for decontamination (default: ``CODEKILN_DATA_DIR``); ``sandbox_token``
    defaults to ``CODEKILN_SANDBOX_TOKEN``. Without ``sandbox_url`` the execution filter is off
    and every sample that needs it is dropped (``exec:no_sandbox``), never kept unchecked.
    """
    config = config or SynthConfig()
    # This function is an entry point (codekiln-stream calls it with the four positional
    # arguments only), so it reads the two settings those callers do not pass here.
    data_dir = data_dir or os.environ.get("CODEKILN_DATA_DIR")
    sandbox_token = sandbox_token or os.environ.get("CODEKILN_SANDBOX_TOKEN")
    if not data_dir:
        raise ConfigError(
            "run_synthesis needs data_dir (or CODEKILN_DATA_DIR): the HumanEval+/MBPP+ files "
            "used for decontamination"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    llm_config = llm_config or LLMConfig(
        endpoints=tuple(u for u in llm_url.split(",") if u.strip()),
        max_concurrency_per_endpoint=max(config.concurrency, 1),
    )
    paths = [Path(p) for p in instructions]
    for p in paths:
        if not p.is_file():
            raise ConfigError(f"instruction file {p} does not exist")
    start = time.perf_counter()
    ctx = SynthContext.open(
        llm_config,
        sandbox_url=sandbox_url,
        sandbox_token=sandbox_token,
        exec_timeout_s=config.exec_timeout_s,
        exec_memory_mb=config.exec_memory_mb,
        prompt_dir=Path(config.prompt_dir) if config.prompt_dir else None,
        deadline_s=config.deadline_s,
        samples_per_seed=config.samples_per_seed,
        seed=config.seed,
    )
    try:

        async def main() -> dict[str, Any]:
            await ctx.llm.wait_ready(timeout_s=min(config.deadline_s, 120.0), on_wait=_say)
            if ctx.execution is not None:
                # Fail at once on a wrong URL or token rather than quarantining every sample.
                # /healthz needs no token: one trivial run proves the token too.
                try:
                    await ctx.execution.sandbox.health()
                except SandboxError as exc:
                    raise ExecutionError(f"sandbox at {sandbox_url} is not usable: {exc}") from exc
                problem = await check_sandbox(ctx.execution.sandbox, str(sandbox_url))
                if problem is not None:
                    raise ConfigError(problem)
            return await _synthesise(
                ctx,
                corpus_dir=Path(corpus_dir),
                out_dir=out,
                config=config,
                data_dir=Path(data_dir),
                instructions=paths,
            )

        report = ctx.portal.call(main())
        report["llm"] = {url: s.to_json() for url, s in ctx.llm.stats().items()}
        report["model"] = ctx.llm.model
    finally:
        ctx.close()
    report["enabled"] = True
    report["execution_filter"] = bool(sandbox_url)
    report["seconds"] = round(time.perf_counter() - start, 2)
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True), "utf-8")
    (out / "report.md").write_text(render_report(report), "utf-8")
    problem = nothing_generated(report["llm"])
    if problem is not None:
        raise LLMError(f"{problem}; see {out / 'report.md'}")
    return report


def _say(line: str) -> None:
    """One line of progress on stderr (a wait for the LLM is not silence)."""
    print(line, file=sys.stderr, flush=True)
