"""The run protocol every executor implements (the local runtime, :mod:`.job`, and the Ray
driver, :mod:`codekiln.stream.ray.job`); they differ only in how they execute the stages::

    open_run       stages built, the run fingerprinted, out_dir checked (resume, or refuse)
    execute        executor-specific: plan, run the stages over the shards, merge stage state
    commit_run     the checkpoint (the commit point) and manifest.json, then finish_run:
    finish_run     the after-commit steps (AfterCommit), final manifest.json and report.md

A run found complete by ``open_run`` goes straight to :func:`report_complete`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from codekiln.stream.manifest import MANIFEST, Manifest, write_manifest
from codekiln.stream.report import PLOT, write_report
from codekiln.stream.runtime import checkpoint as ckpt_mod
from codekiln.stream.runtime.build import BuiltStages, build_stages
from codekiln.stream.runtime.checkpoint import Checkpoint
from codekiln.stream.runtime.errors import CheckpointError
from codekiln.stream.runtime.manifests import build_manifest
from codekiln.stream.runtime.spec import CorpusCommitted, JobResult, JobSpec

REPORT = "report.md"


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
    await asyncio.to_thread(save_run, spec.out_dir, ckpt, manifest)
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


def save_run(out_dir: Path, ckpt: Checkpoint, manifest: Manifest) -> None:
    """Save the checkpoint (the commit point), then manifest.json, its readable view."""
    # The checkpoint is the commit point; manifest.json is its readable view, rewritten after.
    ckpt_mod.save(out_dir, ckpt)
    write_manifest(out_dir, manifest)


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
