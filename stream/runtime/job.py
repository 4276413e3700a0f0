"""The local executor: one batch run, inputs -> pipeline -> ``<out>/{corpus,rejects}/``,
``manifest.json``, ``report.md``, resumable exactly-once from its checkpoint.

Running the same command again after a crash (``kill -9`` included) resumes from the last
checkpoint; after a completed run it only (re)writes the manifest and report. The steps around
the execution are the run protocol (:mod:`.protocol`), shared with the Ray executor; the names
of the job's modules (:mod:`.spec`, :mod:`.build`, :mod:`.manifests`, :mod:`.protocol`) are
re-exported here, where callers have always found them.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from codekiln.stream.config import RuntimeConfig
from codekiln.stream.metrics import RunMetrics
from codekiln.stream.readers.inputs import InputSet
from codekiln.stream.runtime import checkpoint as ckpt_mod
from codekiln.stream.runtime.build import BuiltStages, build_stages, pool_stage_classes
from codekiln.stream.runtime.checkpoint import Checkpoint
from codekiln.stream.runtime.errors import StageCrashed
from codekiln.stream.runtime.manifests import build_manifest, stage_reports
from codekiln.stream.runtime.pipeline import (
    Barrier,
    Pipeline,
    PipelineOptions,
    PoolFactory,
    first_error,
)
from codekiln.stream.runtime.protocol import (
    REPORT,
    OpenedRun,
    clear_output,
    commit_run,
    fingerprint,
    finish_run,
    open_run,
    report_complete,
    save_run,
)
from codekiln.stream.runtime.spec import (
    AfterCommit,
    CorpusCommitted,
    JobResult,
    JobSpec,
    default_inputs,
)
from codekiln.stream.writers.sink import RunSink

__all__ = [
    "REPORT",
    "AfterCommit",
    "BuiltStages",
    "CorpusCommitted",
    "JobResult",
    "JobSpec",
    "OpenedRun",
    "build_manifest",
    "build_stages",
    "clear_output",
    "commit_run",
    "default_inputs",
    "fingerprint",
    "finish_run",
    "open_run",
    "pipeline_options",
    "pool_stage_classes",
    "report_complete",
    "run_job",
    "stage_reports",
]


def pipeline_options(runtime: RuntimeConfig) -> PipelineOptions:
    """The engine's options from the config's ``runtime`` section (same names, but for
    ``checkpoint_every_records``)."""
    names = [f.name for f in fields(PipelineOptions) if hasattr(runtime, f.name)]
    same = {name: getattr(runtime, name) for name in names}
    return PipelineOptions(**same, checkpoint_every=runtime.checkpoint_every_records)


async def run_job(
    spec: JobSpec,
    *,
    warn: Callable[[str], None] | None = None,
    on_metrics: Callable[[RunMetrics], Any] | None = None,
    pool_factory: PoolFactory | None = None,
) -> JobResult:
    """Run (or resume, or only re-report) the batch job described by ``spec``.

    ``on_metrics``, when given, is an async callable started beside the pipeline (the progress
    display); it is cancelled when the pipeline finishes. ``pool_factory`` makes the pool of
    the cpu_bound stages (see :class:`~codekiln.stream.runtime.pipeline.Pipeline`).
    """
    out_dir = spec.out_dir
    # Stage constructors may load models: not in the event loop.
    opened = await asyncio.to_thread(open_run, spec, warn)
    built, fp, previous = opened.built, opened.fingerprint, opened.previous
    keys = [k for k, _ in built.stages]
    if previous is not None and previous.complete:
        return await report_complete(spec, built, previous)

    source = await asyncio.to_thread(InputSet, list(spec.inputs), spec.config.input)
    sink = await asyncio.to_thread(RunSink, out_dir, spec.config.output)
    metrics = RunMetrics(Pipeline.step_keys(keys))
    work_dirs = {k: out_dir / ckpt_mod.STATE_DIR / "stages" / k for k in keys}
    ckpt = previous or Checkpoint(fingerprint=fp, starts=0)
    ckpt.starts += 1
    await asyncio.to_thread(_prepare, built, work_dirs, source, sink, metrics, ckpt)

    async def on_checkpoint(barrier: Barrier, sink_state: dict[str, Any]) -> None:
        ckpt.seq = barrier.seq
        ckpt.position = barrier.position
        ckpt.source_state = barrier.source_state
        ckpt.stage_states = dict(barrier.states)
        ckpt.metrics = barrier.metrics
        ckpt.sink = sink_state
        snapshot = build_manifest(spec, built, ckpt, source)
        await asyncio.to_thread(save_run, out_dir, ckpt, snapshot)

    pipeline = Pipeline(
        source,
        built.stages,
        sink,
        options=pipeline_options(spec.config.runtime),
        metrics=metrics,
        work_dirs=work_dirs,
        on_checkpoint=on_checkpoint,
        seq_start=ckpt.seq,
        pool_factory=pool_factory,
    )
    started = time.monotonic()
    if on_metrics is None:
        await pipeline.run(ckpt.position)
    else:
        try:
            async with asyncio.TaskGroup() as tg:
                display = tg.create_task(on_metrics(metrics))
                try:
                    await pipeline.run(ckpt.position)
                finally:
                    display.cancel()
        except BaseExceptionGroup as group:
            # The pipeline's own error, not a group of one: callers decide by its type.
            raise first_error(group) from None
    elapsed = time.monotonic() - started

    reports = await asyncio.to_thread(stage_reports, built.stages)
    ckpt.complete = True
    ckpt.position = None
    ckpt.stage_states = {}
    ckpt.source_state = source.state()
    ckpt.metrics = metrics.snapshot()
    ckpt.sink = sink.state()
    ckpt.final = {"reports": reports, "elapsed_s": round(elapsed, 3)}
    manifest = build_manifest(spec, built, ckpt, source)
    manifest["elapsed_s"] = round(elapsed, 3)
    return await commit_run(spec, built, ckpt, manifest, resumed=previous is not None)


def _prepare(  # noqa: PLR0917 - private helper called once, from run_job
    built: BuiltStages,
    work_dirs: dict[str, Path],
    source: InputSet,
    sink: RunSink,
    metrics: RunMetrics,
    ckpt: Checkpoint,
) -> None:
    """Open the stages and, when resuming, restore every part to the checkpoint's cut."""
    for key, stage in built.stages:
        work_dirs[key].mkdir(parents=True, exist_ok=True)
        try:
            stage.open(work_dirs[key])
        except Exception as exc:
            raise StageCrashed(key, f"open() failed: {type(exc).__name__}: {exc}") from exc
    sink.restore(ckpt.sink)
    if ckpt.seq == 0:
        return
    if ckpt.source_state is not None:
        source.load_state(ckpt.source_state)
    metrics.restore(ckpt.metrics)
    for key, stage in built.stages:
        if key in ckpt.stage_states:
            try:
                stage.load_state_dict(pickle.loads(ckpt.stage_states[key]))
            except Exception as exc:
                raise StageCrashed(
                    key, f"load_state_dict() failed: {type(exc).__name__}: {exc}"
                ) from exc
