"""One batch run: inputs -> pipeline -> ``<out>/{corpus,rejects}/``, ``manifest.json``,
``report.md``, resumable exactly-once from its checkpoint.

Running the same command again after a crash (``kill -9`` included) resumes from the last
checkpoint; after a completed run it only (re)writes the manifest and report.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import pickle
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from codekiln.stream import registry
from codekiln.stream.config import StreamConfig, resolve_stage
from codekiln.stream.manifest import (
    FORMAT,
    MANIFEST,
    Manifest,
    SkippedStage,
    StageEntry,
    write_manifest,
)
from codekiln.stream.metrics import RunMetrics, StepCounts
from codekiln.stream.readers.inputs import InputSet
from codekiln.stream.report import PLOT, ReportPart, write_report
from codekiln.stream.runtime import checkpoint as ckpt_mod
from codekiln.stream.runtime.checkpoint import Checkpoint
from codekiln.stream.runtime.errors import CheckpointError, ConfigError, StageCrashed
from codekiln.stream.runtime.pipeline import (
    Barrier,
    Pipeline,
    PipelineOptions,
    PoolFactory,
    first_error,
)
from codekiln.stream.stage import Stage
from codekiln.stream.writers.sink import RunSink

REPORT = "report.md"


@dataclass(frozen=True)
class CorpusCommitted:
    """The engine's result once the corpus is committed: what the steps above it start from."""

    out_dir: Path
    #: manifest.json as written at the commit (the after-commit steps' entries not yet in it).
    manifest: Mapping[str, Any]

    @property
    def corpus_dir(self) -> Path:
        return self.out_dir / "corpus"

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / MANIFEST


class AfterCommit(Protocol):
    """A step composed above the engine (codekiln.flow), run once the corpus is committed.

    The engine runs each step at most once per output folder: the step's result is saved in
    the checkpoint under ``key`` before the next starts, so a rerun after a crash does not
    call a step that already ran. ``entry`` gives the step's ``manifest.json`` entry (also
    under ``key``; ``None``: none), ``report`` its part of ``report.md`` and of the summary.
    """

    key: str

    def wanted(self) -> bool:
        """Whether ``run`` is to be called (an unconfigured step is only described)."""
        ...

    async def run(self, committed: CorpusCommitted) -> dict[str, Any]: ...

    def entry(self, result: dict[str, Any] | None) -> Any: ...

    def report(self, manifest: Mapping[str, Any]) -> ReportPart: ...


@dataclass(frozen=True)
class JobSpec:
    inputs: tuple[str, ...]
    out_dir: Path
    config: StreamConfig
    overwrite: bool = False
    #: Replace (instead of refusing) a run in out_dir whose inputs or config differ; the same
    #: run is still resumed. --default-input sets it: stages come and go with the code.
    restart_on_change: bool = False
    #: Free-form notes for the report (e.g. which caps the CLI applied and why).
    notes: tuple[str, ...] = ()
    #: What runs once the corpus is committed, in order (composed by codekiln.flow).
    after_commit: tuple[AfterCommit, ...] = ()
    #: Sections of the combined config owned by the layers above the engine, recorded
    #: after the engine's own in the manifest's ``config``.
    config_extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class JobResult:
    out_dir: Path
    manifest: Manifest
    report_path: Path
    resumed: bool = False
    already_complete: bool = False
    skipped_stages: list[SkippedStage] = field(default_factory=list)
    #: One-line notes of the after-commit steps for the terminal summary.
    summary: list[str] = field(default_factory=list)


@dataclass
class BuiltStages:
    stages: list[tuple[str, Stage]]
    names: dict[str, str]
    skipped: list[SkippedStage]


def build_stages(config: StreamConfig, warn: Callable[[str], None] | None = None) -> BuiltStages:
    """Instantiate the configured stages (or the default pipeline, as far as it exists)."""
    entries: list[tuple[str, dict[str, Any]]] = []
    skipped: list[SkippedStage] = []
    classes: dict[int, type[Stage]] = {}
    if config.stages is None:
        for name in registry.DEFAULT_PIPELINE:
            if not registry.available(name):
                skipped.append({"name": name, "why": "module not written yet"})
                continue
            try:
                cls = registry.resolve(name)
            except Exception as exc:
                skipped.append(
                    {"name": name, "why": f"cannot be loaded: {type(exc).__name__}: {exc}"}
                )
                continue
            classes[len(entries)] = cls
            entries.append((name, {}))
    else:
        for i, sc in enumerate(config.stages):
            classes[len(entries)] = resolve_stage(f"stages[{i}]", sc.name)
            entries.append((sc.name, dict(sc.options)))
    stages: list[tuple[str, Stage]] = []
    names: dict[str, str] = {}
    seen: dict[str, int] = {}
    for i, (name, options) in enumerate(entries):
        cls = classes[i]
        try:
            stage = cls(**options)
        except Exception as exc:
            if config.stages is None:
                skipped.append({"name": name, "why": f"cannot start: {type(exc).__name__}: {exc}"})
                continue
            raise ConfigError(
                f"config: stages[{i}].options: stage {name!r} rejected its options: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        base = name.rpartition(":")[2] if ":" in name else name
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base}_{seen[base]}"
        stages.append((key, stage))
        names[key] = name
    for item in skipped:
        if warn is not None:
            warn(f"stage {item['name']} is off: {item['why']}")
    return BuiltStages(stages, names, skipped)


def pool_stage_classes(config: StreamConfig) -> list[type[Stage]]:
    """The classes of the stages ``build_stages`` would run in the process pool (cpu_bound,
    not stateful), imported but not instantiated; a stage that cannot load is left out here
    (``build_stages`` reports it)."""
    classes: list[type[Stage]] = []
    if config.stages is None:
        for name in registry.DEFAULT_PIPELINE:
            try:
                if registry.available(name):
                    classes.append(registry.resolve(name))
            except Exception:  # build_stages skips it and says why
                continue
    else:
        classes = [resolve_stage(f"stages[{i}]", sc.name) for i, sc in enumerate(config.stages)]
    return [cls for cls in classes if cls.cpu_bound and not cls.stateful]


def fingerprint(spec: JobSpec, stage_keys: list[str]) -> str:
    """What must match for a resume: inputs, stages and every option that shapes the output."""
    cfg = spec.config.to_dict()
    data = {
        "inputs": [str(Path(p).resolve()) for p in spec.inputs],
        "input": cfg["input"],
        "stages": cfg["stages"],
        "stage_keys": stage_keys,
        "output": cfg["output"],
        "batch_size": cfg["runtime"]["batch_size"],
        "batch_max_chars": cfg["runtime"]["batch_max_chars"],
        "checkpoint_every_records": cfg["runtime"]["checkpoint_every_records"],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def clear_output(out_dir: Path) -> None:
    """Remove every output of a previous run from ``out_dir`` (``--overwrite``)."""
    for name in ("corpus", "rejects", ckpt_mod.STATE_DIR):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    # lang_distribution.png: the chart's name before it became SVG (an older run's output).
    for name in (MANIFEST, REPORT, PLOT, "lang_distribution.png"):
        (out_dir / name).unlink(missing_ok=True)


def build_manifest(
    spec: JobSpec,
    built: BuiltStages,
    ckpt: Checkpoint,
    source: InputSet | None,
) -> Manifest:
    """``manifest.json`` of the run ``ckpt`` describes (every executor writes this one)."""
    sink = ckpt.sink or {"corpus": [], "rejects": [], "langs": {}, "reasons": {}}
    metrics = ckpt.metrics
    reports = ckpt.final.get("reports", {})
    stages: list[StageEntry] = []
    zero: StepCounts = {"in": 0, "out": 0, "dropped": {}, "busy_s": 0.0, "batches": 0}
    for key, stage in built.stages:
        m = metrics.get(key, zero)
        stages.append(
            {
                "key": key,
                "name": built.names[key],
                "class": f"{type(stage).__module__}.{type(stage).__qualname__}",
                "stateful": stage.stateful,
                "cpu_bound": stage.cpu_bound,
                "in": m["in"],
                "out": m["out"],
                "dropped": m["dropped"],
                "busy_s": round(m["busy_s"], 3),
                "report": reports.get(key, {}),
            }
        )
    src = metrics.get("source", zero)
    budget = (ckpt.source_state or {}).get("budget", {})
    return {
        "format": FORMAT,
        "complete": ckpt.complete,
        "fingerprint": ckpt.fingerprint,
        "starts": ckpt.starts,
        "checkpoints": ckpt.seq,
        "inputs": list(spec.inputs),
        "missing_inputs": list(source.missing) if source else [],
        "config": {**spec.config.to_dict(), **spec.config_extra},
        "notes": list(spec.notes),
        "source": {
            "items": src["in"],
            "records": src["out"],
            "dropped": src["dropped"],
            "budget": budget,
        },
        "stages": stages,
        "skipped_stages": built.skipped,
        "corpus": {
            "format": spec.config.output.format,
            "records": sum(s["records"] for s in sink["corpus"]),
            "shards": sink["corpus"],
        },
        "rejects": {
            "records": sum(s["records"] for s in sink["rejects"]),
            "reasons": dict(sorted(sink["reasons"].items(), key=lambda kv: -kv[1])),
            "shards": sink["rejects"],
        },
        "langs": dict(sorted(sink["langs"].items(), key=lambda kv: -kv[1])),
    }


# -- the run protocol ---------------------------------------------------------------------------
#
# Every executor runs a job in the same steps; the local runtime (run_job) and the Ray executor
# (codekiln.stream.ray.job) differ only in how they execute the stages over the input:
#
#   open_run       stages built, the run fingerprinted, out_dir checked (resume, or refuse)
#   execute        executor-specific: plan, run the stages over the shards, merge stage state
#   commit_run     the checkpoint (the commit point) and manifest.json, then finish_run:
#   finish_run     the after-commit steps (AfterCommit), final manifest.json and report.md
#
# A run found complete by open_run goes straight to report_complete.


@dataclass(frozen=True)
class OpenedRun:
    built: BuiltStages
    fingerprint: str
    #: The checkpoint of the same run found in out_dir (None: a fresh start).
    previous: Checkpoint | None


def open_run(spec: JobSpec, warn: Callable[[str], None] | None = None) -> OpenedRun:
    """Build the stages, fingerprint the run, and find what ``spec.out_dir`` holds: a previous
    start of the same run (resumed), another run (refused; replaced with ``overwrite`` or
    ``restart_on_change``), or nothing. Blocking (stage constructors may load models)."""
    out_dir = spec.out_dir
    built = build_stages(spec.config, warn)
    fp = fingerprint(spec, [k for k, _ in built.stages])
    if spec.overwrite:
        clear_output(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = ckpt_mod.load(out_dir)
    if previous is not None and previous.fingerprint != fp and spec.restart_on_change:
        if warn is not None:
            warn(f"{out_dir} holds a run with other inputs or stages: starting over")
        clear_output(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        previous = None
    if previous is not None and previous.fingerprint != fp:
        raise CheckpointError(
            f"{out_dir} holds a run with other inputs or config "
            f"(fingerprint {previous.fingerprint}, "
            f"this run {fp}); pass --overwrite to start over, or choose another --out"
        )
    return OpenedRun(built, fp, previous)


async def report_complete(spec: JobSpec, built: BuiltStages, ckpt: Checkpoint) -> JobResult:
    """A run already complete in ``out_dir``: only (re)write its manifest and report."""
    manifest = build_manifest(spec, built, ckpt, None)
    return await _finished(spec, built, ckpt, manifest, already_complete=True)


async def commit_run(
    spec: JobSpec,
    built: BuiltStages,
    ckpt: Checkpoint,
    manifest: Manifest,
    *,
    resumed: bool,
) -> JobResult:
    """Commit a completed run (``ckpt.complete``): the checkpoint, then its manifest, then
    :func:`finish_run`."""
    await asyncio.to_thread(_save_both, spec.out_dir, ckpt, manifest)
    return await _finished(spec, built, ckpt, manifest, resumed=resumed)


async def _finished(
    spec: JobSpec,
    built: BuiltStages,
    ckpt: Checkpoint,
    manifest: Manifest,
    *,
    resumed: bool = False,
    already_complete: bool = False,
) -> JobResult:
    manifest, report, summary = await finish_run(spec, manifest, ckpt)
    return JobResult(
        spec.out_dir,
        manifest,
        report,
        resumed=resumed,
        already_complete=already_complete,
        skipped_stages=built.skipped,
        summary=summary,
    )


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
        await asyncio.to_thread(_save_both, out_dir, ckpt, snapshot)

    opts = spec.config.runtime
    pipeline = Pipeline(
        source,
        built.stages,
        sink,
        options=PipelineOptions(
            batch_size=opts.batch_size,
            batch_max_chars=opts.batch_max_chars,
            queue_batches=opts.queue_batches,
            workers=opts.workers,
            checkpoint_every=opts.checkpoint_every_records,
        ),
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


def _save_both(out_dir: Path, ckpt: Checkpoint, manifest: Manifest) -> None:
    # The checkpoint is the commit point; manifest.json is its readable view, rewritten after.
    ckpt_mod.save(out_dir, ckpt)
    write_manifest(out_dir, manifest)


def stage_reports(stages: Sequence[tuple[str, Stage]]) -> dict[str, Any]:
    """Each stage's ``report()`` by key; a report that fails or is not JSON says so instead."""
    out: dict[str, Any] = {}
    for key, stage in stages:
        try:
            report = stage.report()
            json.dumps(report, default=str)
            out[key] = report
        except Exception as exc:
            out[key] = {"error": f"report() failed: {type(exc).__name__}: {exc}"}
    return out


async def finish_run(
    spec: JobSpec, manifest: Manifest, ckpt: Checkpoint
) -> tuple[Manifest, Path, list[str]]:
    """The run protocol's last step, shared by every executor: with the corpus committed
    (``ckpt`` complete and saved), run the after-commit steps, then write the final
    ``manifest.json`` and ``report.md``. Returns (manifest, report path, summary lines)."""
    out_dir = spec.out_dir
    committed = CorpusCommitted(out_dir, dict(manifest))
    for step in spec.after_commit:
        done = ckpt.final.get(step.key)
        if done is None and step.wanted():
            done = await step.run(committed)
            ckpt.final[step.key] = done
            await asyncio.to_thread(ckpt_mod.save, out_dir, ckpt)
        entry = step.entry(done)
        if entry is not None:  # a key of the step's own, beyond the engine's Manifest keys
            cast(dict[str, Any], manifest)[step.key] = entry
    await asyncio.to_thread(write_manifest, out_dir, manifest)
    parts = [step.report(manifest) for step in spec.after_commit]
    report = await asyncio.to_thread(write_report, out_dir, manifest, parts)
    return manifest, report, [line for part in parts for line in part.summary]


def default_inputs() -> list[str]:
    """The venv's standard library and site-packages (sysconfig stdlib, purelib, platlib)."""
    import sysconfig

    paths = sysconfig.get_paths()
    out: list[str] = []
    for key in ("stdlib", "purelib", "platlib"):
        p = paths.get(key)
        if p and Path(p).is_dir() and p not in out:
            out.append(p)
    if not out:  # pragma: no cover - every CPython has a stdlib folder
        out.append(str(Path(sys.executable).parent))
    return out
