"""Sample generation through an OpenAI-compatible endpoint (vLLM), resumable per task.

Writes ``samples.jsonl`` (evalplus format: ``task_id``, sanitised ``solution``) and
``samples.raw.jsonl`` (the model's raw text). On restart, tasks that already have their
samples are skipped and partly done tasks only ask for the rest. A task whose generation
finally fails is quarantined in ``generation_failures.jsonl`` with its reason; the run goes on,
unless every task failed: then nothing was generated and :class:`~.errors.EvalError` says why
(the CLI exits 1). ``max_tokens`` above the served context (``max_model_len`` from the
server's ``/v1/models``) is a :class:`~.errors.ConfigError` before any request.

Base-mode stop sequences go to the server with the dataset's own first (vLLM takes at most 4
per request by default); the LLM client cuts the text at the others, and post-processing cuts
again at all of them, as evalplus does.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from codekiln.checks import bound, check_bounds, one_of

from .data import Dataset, Task
from .errors import ConfigError, EvalError
from .prompts import (
    EOS_STOPS,
    MODES,
    Mode,
    base_prompt,
    chat_messages,
    postprocess,
    stop_sequences,
)

SAMPLES_FILE = "samples.jsonl"
RAW_FILE = "samples.raw.jsonl"
GEN_FAILURES_FILE = "generation_failures.jsonl"


@dataclass(frozen=True)
class GenConfig:
    """How samples are drawn."""

    endpoint: str
    model: str | None = None
    mode: Mode = one_of("base", MODES)  # noqa: RUF009 - a dataclasses.field, not a call result
    samples: int = bound(1, ">= 1")
    temperature: float = bound(0.0, ">= 0")
    top_p: float = bound(1.0, "(0, 1]")
    max_tokens: int = bound(768, ">= 1")
    concurrency: int = bound(16, ">= 1")
    request_deadline_s: float = bound(600.0, "> 0")

    def __post_init__(self) -> None:
        check_bounds(self, "", ConfigError)
        if self.samples > 1 and self.temperature == 0:
            raise ConfigError("more than one sample per task needs a temperature > 0")


def _existing(path: Path) -> Counter[str]:
    """Samples already written per task; a torn last line (interrupted write) is dropped."""
    counts: Counter[str] = Counter()
    if not path.is_file():
        return counts
    good: list[str] = []
    torn = False
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            counts[rec["task_id"]] += 1
            good.append(line)
        except (ValueError, KeyError, TypeError):
            torn = True
    if torn:
        path.write_text("".join(g + "\n" for g in good), encoding="utf-8")
    return counts


def _prepare(out_dir: Path, samples_path: Path) -> Counter[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return _existing(samples_path)


async def generate(
    dataset: Dataset, config: GenConfig, out_dir: Path, log: TextIO | None = None
) -> Path:
    """Draw ``config.samples`` samples for every task not yet done; return samples.jsonl."""
    try:
        from codekiln.synth.errors import LLMError
        from codekiln.synth.llm import LLMClient, LLMConfig, SamplingParams
    except ImportError as exc:
        raise ConfigError(
            f"codekiln-eval run needs the LLM client of the synth extra: "
            f"pip install 'codekiln[synth]' ({exc})"
        ) from exc

    log = log or sys.stderr
    samples_path = out_dir / SAMPLES_FILE
    have = await asyncio.to_thread(_prepare, out_dir, samples_path)
    todo = [(t, config.samples - have[t.task_id]) for t in dataset.tasks.values()]
    todo = [(t, n) for t, n in todo if n > 0]
    print(
        f"{dataset.label}: {len(dataset.tasks) - len(todo)} tasks already sampled, "
        f"{len(todo)} to generate",
        file=log,
        flush=True,
    )
    # The dataset's own stops first: those are the ones the server is sent (see the docstring).
    all_stops = stop_sequences(dataset)
    stops = tuple(s for s in all_stops if s not in EOS_STOPS) + tuple(
        s for s in all_stops if s in EOS_STOPS
    )
    llm_config = LLMConfig(
        endpoints=(config.endpoint,),
        model=config.model,
        max_concurrency_per_endpoint=config.concurrency,
    )
    failures = 0
    first_failure = ""
    with (
        samples_path.open("a", encoding="utf-8") as out,
        (out_dir / RAW_FILE).open("a", encoding="utf-8") as raw_out,
    ):

        async def one(task: Task, n: int, llm: Any) -> None:
            nonlocal failures, first_failure
            params = SamplingParams(
                n=n,
                temperature=config.temperature,
                top_p=config.top_p,
                max_tokens=config.max_tokens,
                stop=stops if config.mode == "base" else (),
            )
            prompt = base_prompt(task)
            try:
                if config.mode == "base":
                    completion = await llm.complete(
                        prompt, params, deadline_s=config.request_deadline_s
                    )
                else:
                    completion = await llm.chat(
                        chat_messages(task), params, deadline_s=config.request_deadline_s
                    )
            except LLMError as exc:
                failures += 1
                first_failure = first_failure or str(exc)
                with (out_dir / GEN_FAILURES_FILE).open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"task_id": task.task_id, "reason": repr(exc)}) + "\n")
                return
            texts = [c.text for c in completion.choices]
            solutions = await asyncio.to_thread(
                lambda: [postprocess(config.mode, task, prompt, t, stops) for t in texts]
            )
            # No await between these writes: one task's lines are never interleaved.
            for text, solution in zip(texts, solutions, strict=True):
                raw_out.write(json.dumps({"task_id": task.task_id, "raw": text}) + "\n")
                out.write(json.dumps({"task_id": task.task_id, "solution": solution}) + "\n")
            raw_out.flush()
            out.flush()

        async with LLMClient(llm_config) as llm:
            try:
                await llm.wait_ready(
                    timeout_s=120, on_wait=lambda line: print(line, file=log, flush=True)
                )
            except LLMError as exc:  # a service that is not there: say so, exit 1
                raise EvalError(f"the LLM at {config.endpoint} is not usable: {exc}") from exc
            served = llm.max_model_len
            if served is not None and config.max_tokens > served:
                raise ConfigError(
                    f"max_tokens={config.max_tokens} is more than the served context "
                    f"max_model_len={served} of {config.endpoint}: lower --max-tokens"
                )
            async with asyncio.TaskGroup() as tg:
                for task, n in todo:
                    tg.create_task(one(task, n, llm))
    if todo and failures == len(todo):
        raise EvalError(
            f"generation failed for all {failures} tasks, nothing was generated "
            f"({out_dir / GEN_FAILURES_FILE}); first error: {first_failure}"
        )
    if failures:
        print(
            f"warning: generation failed for {failures} tasks ({GEN_FAILURES_FILE})",
            file=log,
            flush=True,
        )
    return samples_path
