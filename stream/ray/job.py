"""The Ray driver: ``codekiln-stream run --executor ray``, resumable shard by shard.

The run is the plan of :mod:`codekiln.stream.sharded.plan` executed step by step, as Ray tasks
running :mod:`codekiln.stream.sharded.tasks`; every shard task commits its output and then its
marker, every dedup step its result, so:

- a **worker** that dies mid-task is replaced and the task retried by Ray (``max_retries``); the
  retry rewrites the same files;
- a **driver** that dies (``kill -9``) is restarted with the same command: shards and steps
  whose marker exists are not run again, the others are, and the output is exactly-once
  (each final shard's corpus files are replaced whole, under names only that shard uses).

The output folder has the single-machine layout (``corpus/``, ``rejects/``, ``manifest.json``,
``report.md``), so everything downstream reads it the same way; corpus shards are named
``part-sNNNNN-MMMMM`` after the input shard that produced them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from codekiln.stream.dedup import exact_shards as rexact
from codekiln.stream.dedup import fuzzy_shards as rfuzzy
from codekiln.stream.dedup.clusters import HeldCounts
from codekiln.stream.dedup.exact import ExactDedupStage
from codekiln.stream.dedup.fuzzy import FuzzyDedupStage
from codekiln.stream.ray import _cluster
from codekiln.stream.ray.options import RayOptions
from codekiln.stream.readers.inputs import InputSet
from codekiln.stream.runtime import protocol
from codekiln.stream.runtime.build import BuiltStages
from codekiln.stream.runtime.errors import CheckpointError, ConfigError
from codekiln.stream.runtime.manifests import build_manifest
from codekiln.stream.runtime.spec import JobResult, JobSpec
from codekiln.stream.sharded import files, tasks
from codekiln.stream.sharded.collect import collect
from codekiln.stream.sharded.plan import DedupStep, MapStep, SerialStep, Shard, Step, compile_steps
from codekiln.stream.sharded.plan import plan_shards as _plan_shards
from codekiln.stream.stage import Stage

PLAN = "plan.json"


async def run_ray_job(
    spec: JobSpec, options: RayOptions, *, warn: Callable[[str], None] | None = None
) -> JobResult:
    """Run (or resume, or only re-report) ``spec`` on Ray; same result as the local runtime.

    The driver loop blocks (it waits on Ray), so it runs in a worker thread here; the CLI calls
    :func:`run_ray_blocking` in its main thread instead, where Ctrl-C interrupts the wait."""
    return await asyncio.to_thread(run_ray_blocking, spec, options, warn)


def run_ray_blocking(
    spec: JobSpec, options: RayOptions, warn: Callable[[str], None] | None = None
) -> JobResult:
    """:func:`run_ray_job` for a caller without an event loop (must not run inside one)."""
    cfg = spec.config
    if cfg.input.max_files is not None or cfg.input.max_bytes is not None:
        raise ConfigError(
            "--executor ray reads shards in parallel and cannot apply the sequential input caps "
            "input.max_files / input.max_bytes (--max-files, --max-bytes); remove them "
            "(with --default-input, pass --max-bytes 0)"
        )
    opened = protocol.open_run(spec, warn)
    built, fp, previous = opened.built, opened.fingerprint, opened.previous
    steps = compile_steps(built.stages)
    out_dir = spec.out_dir
    layout = tasks.Layout(out_dir.resolve())
    if previous is not None:
        if not previous.complete:
            raise CheckpointError(
                f"{out_dir} holds an unfinished run of the local executor; resume it with "
                "--executor local, or pass --overwrite"
            )
        return asyncio.run(protocol.report_complete(spec, built, previous))

    plan = files.read_json(layout.root / PLAN)
    if plan is not None and plan["fingerprint"] != fp:
        raise CheckpointError(
            f"{out_dir} holds an unfinished Ray run with other inputs or config (fingerprint "
            f"{plan['fingerprint']}, this run {fp}); pass --overwrite to start over"
        )
    resumed = plan is not None
    if plan is None:
        InputSet(list(spec.inputs), cfg.input)  # the same "no input exists" error as local
        shards = _plan_shards(list(spec.inputs), cfg.input, options.shard_files)
        plan = {
            "fingerprint": fp,
            "starts": 0,
            "shards": [s.to_json() for s in shards],
            "shard_files": options.shard_files,
            "partitions": options.partitions,
        }
    plan["starts"] += 1
    files.write_json(layout.root / PLAN, plan)
    shards = [Shard.from_json(s) for s in plan["shards"]]

    started = time.monotonic()
    owned = _cluster.connect(options)
    try:
        driver = _Driver(spec, options, built, layout, plan)
        step_walls: dict[int, float] = {}
        for step in steps:
            t0 = time.monotonic()
            driver.run(step, steps)
            step_walls[step.index] = round(time.monotonic() - t0, 3)
        cpus = _cluster.cluster_cpus()
    finally:
        if owned:
            _cluster.shutdown()
    elapsed = time.monotonic() - started

    ckpt, executor = collect(spec, built, layout, shards, steps, plan, elapsed)
    manifest = build_manifest(spec, built, ckpt, None)
    manifest["missing_inputs"] = [s.path for s in shards if s.kind == "missing"]
    manifest["elapsed_s"] = round(elapsed, 3)
    executor["cluster_cpus"] = cpus
    for info, step in zip(executor["steps"], steps, strict=True):
        info["wall_s"] = step_walls[step.index]  # this start only (0 when already done)
    executor["address"] = options.address or "local"
    manifest["executor"] = executor
    return asyncio.run(protocol.commit_run(spec, built, ckpt, manifest, resumed=resumed))


class _Driver:
    """The steps of one start of the run (``plan``: as written in the plan file)."""

    def __init__(
        self,
        spec: JobSpec,
        options: RayOptions,
        built: BuiltStages,
        layout: tasks.Layout,
        plan: dict[str, Any],
    ) -> None:
        import ray

        self.ray = ray
        self.spec = spec
        self.options = options
        self.stages: dict[str, Stage] = dict(built.stages)
        self.layout = layout
        self.shards = [Shard.from_json(s) for s in plan["shards"]]
        self.start = int(plan["starts"])
        self.partitions = int(plan["partitions"])
        remote = ray.remote(num_cpus=1, max_retries=options.max_retries, retry_exceptions=False)
        self.map_shard = remote(tasks.map_shard)
        self.exact_keys = remote(tasks.exact_keys)
        self.exact_reduce = remote(tasks.exact_reduce)
        self.fuzzy_keys = remote(tasks.fuzzy_keys)
        self.fuzzy_edges = remote(tasks.fuzzy_edges)
        self.fuzzy_cluster = remote(tasks.fuzzy_cluster)
        self.fuzzy_members = remote(tasks.fuzzy_members)
        self.fuzzy_repo_keys = remote(tasks.fuzzy_repo_keys)
        self.fuzzy_repo_merge = remote(tasks.fuzzy_repo_merge)
        self.fuzzy_repo_cluster = remote(tasks.fuzzy_repo_cluster)
        self.serial = remote(tasks.serial_step)

    def wait(self, refs: list[Any], what: str) -> list[Any]:
        results: list[Any] = _cluster.wait_all(refs, self.options.task_timeout_s, what)
        return results

    def run(self, step: Step, steps: list[Step]) -> None:
        if isinstance(step, MapStep):
            self._map(step, steps)
        elif isinstance(step, DedupStep):
            if self.layout.step_marker(step.index).exists():
                return
            if step.method == "exact":
                self._exact(step)
            else:
                self._fuzzy(step)
        else:
            self._serial(step)

    # -- map ---------------------------------------------------------------------------------
    def _map(self, step: MapStep, steps: list[Step]) -> None:
        todo = [s for s in self.shards if not self.layout.marker(step.index, s.index).exists()]
        if not todo:
            return
        source_step: int | None = None
        apply_method: str | None = None
        per_shard: dict[int, Any] = {}
        if step.index > 0:
            before = steps[step.index - 1]
            source_step = step.index - 2 if isinstance(before, DedupStep) else step.index - 1
            if isinstance(before, DedupStep):
                apply_method = before.method
                result = files.read_pickle(self.layout.result(before.index))
                per_shard = result["per_shard"]
                if "all" in result:  # repository level: one decision table for every shard
                    apply_method = "fuzzy_repo"
                    shared = self.ray.put(result["all"])
                    per_shard = {s.index: shared for s in todo}
        job = tasks.MapJob(
            self.spec.config,
            self.layout,
            step,
            source_step,
            apply_method,
            self.start,
            list(self.stages),
        )
        job_ref = self.ray.put(job)
        refs = [self.map_shard.remote(job_ref, s, per_shard.get(s.index)) for s in todo]
        self.wait(refs, f"map step {step.index} ({', '.join(step.stages) or 'apply'})")

    # -- exact -------------------------------------------------------------------------------
    def _keys(self, fn: Any, step: DedupStep, extra: int) -> list[list[Any]]:
        stage = self.stages[step.stage]
        n = self.partitions + extra
        refs = []
        for s in self.shards:
            r = fn.options(num_returns=n).remote(
                self.layout, step.index - 1, s.index, stage, self.partitions
            )
            refs.append(r if n > 1 else [r])
        return refs

    def _exact(self, step: DedupStep) -> None:
        stage = self.stages[step.stage]
        assert isinstance(stage, ExactDedupStage)
        keys = self._keys(self.exact_keys, step, 0)
        reducers = [
            self.exact_reduce.remote(stage, *[k[p] for k in keys]) for p in range(self.partitions)
        ]
        results: list[rexact.Reduced] = self.wait(reducers, f"exact dedup {step.stage!r}")
        per_shard: dict[int, dict[str, Any]] = {}
        for part in results:
            for shard, hits in part.per_shard.items():
                per_shard.setdefault(shard, {}).update(hits)
        report = rexact.merge_reports(stage, results)
        self._commit_dedup(step, per_shard, report)

    # -- fuzzy -------------------------------------------------------------------------------
    def _fuzzy(self, step: DedupStep) -> None:
        stage = self.stages[step.stage]
        assert isinstance(stage, FuzzyDedupStage)
        if stage.level == "repository":
            self._fuzzy_repositories(step, stage)
            return
        p = self.partitions
        keys = self._keys(self.fuzzy_keys, step, 2)
        edges = [self.fuzzy_edges.remote(*[k[i] for k in keys]) for i in range(p)]
        clustered = self.fuzzy_cluster.remote(*edges, *[k[p] for k in keys])
        counts_list = self.wait([k[p + 1] for k in keys], f"fuzzy dedup {step.stage!r}: keys")
        (members,) = self.wait([clustered], f"fuzzy dedup {step.stage!r}: clustering")
        refs = [
            self.fuzzy_members.remote(self.layout, step.index - 1, shard, m, stage)
            for shard, m in sorted(members.items())
        ]
        member_lists = self.wait(refs, f"fuzzy dedup {step.stage!r}: survivors")
        per_shard, clusters, dropped = rfuzzy.winners(member_lists)
        counts = HeldCounts(computed_here=self._computed_here(step))
        for c in counts_list:
            counts.add(c)
        report = stage.file_report(counts, dropped, clusters)
        self._commit_dedup(step, per_shard, report)

    def _fuzzy_repositories(self, step: DedupStep, stage: FuzzyDedupStage) -> None:
        p = self.partitions
        keys = self._keys(self.fuzzy_repo_keys, step, 1)
        merged = [self.fuzzy_repo_merge.remote(stage, *[k[i] for k in keys]) for i in range(p)]
        clustered = self.fuzzy_repo_cluster.remote(stage, *merged)
        held = sum(self.wait([k[p] for k in keys], f"fuzzy dedup {step.stage!r}: repositories"))
        (decided,) = self.wait([clustered], f"fuzzy dedup {step.stage!r}: clustering")
        counts = HeldCounts(held, computed_here=self._computed_here(step))
        report = stage.repository_report(counts, decided)
        self._commit_dedup(step, {}, report, shared=decided.losers())

    def _computed_here(self, step: DedupStep) -> int:
        return sum(
            int(
                (files.read_json(self.layout.marker(step.index - 1, s.index)) or {}).get(
                    "computed_here", 0
                )
            )
            for s in self.shards
        )

    def _commit_dedup(
        self, step: DedupStep, per_shard: dict[int, Any], report: Any, shared: Any = None
    ) -> None:
        result = {"per_shard": per_shard, "report": report}
        if shared is not None:
            result["all"] = shared
        files.write_pickle(self.layout.result(step.index), result)
        files.write_json(
            self.layout.step_marker(step.index), {"start": self.start, "report": report}
        )

    # -- serial ------------------------------------------------------------------------------
    def _serial(self, step: SerialStep) -> None:
        if self.layout.step_marker(step.index).exists():
            return
        ref = self.serial.remote(
            self.stages[step.stage],  # fresh: the driver's stages never process anything
            self.layout,
            step.index,
            step.stage,
            [s.index for s in self.shards],
            self.start,
        )
        (marker,) = self.wait([ref], f"serial stage {step.stage!r}")
        files.write_json(self.layout.step_marker(step.index), marker)
