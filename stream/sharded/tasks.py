"""The work of one task of a run made shard by shard: plain functions, which an executor runs
where it likes (the Ray executor wraps them with ``ray.remote``).

Every task is idempotent: it writes under its own names (temp, fsync, rename) and its
completion marker last, so a task retried after its worker died, or re-run after the driver
died, produces the same bytes, and a shard whose marker exists is never run again.

Stage objects are built once per worker process from the run's config (the same
:func:`~codekiln.stream.runtime.build.build_stages` the single-machine runtime uses) and reused by
every task that worker runs.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codekiln.stream.config import StreamConfig
from codekiln.stream.dedup import exact_shards as rexact
from codekiln.stream.dedup import fuzzy_shards as rfuzzy
from codekiln.stream.dedup.clusters import RepoPartial
from codekiln.stream.dedup.exact import ExactDedupStage
from codekiln.stream.dedup.fuzzy import FuzzyDedupStage, take_minhash
from codekiln.stream.metrics import RunMetrics
from codekiln.stream.readers.base import Budget
from codekiln.stream.readers.inputs import MissingInput, make_reader
from codekiln.stream.record import Record
from codekiln.stream.runtime.build import build_stages
from codekiln.stream.runtime.errors import StageCrashed
from codekiln.stream.runtime.pipeline import run_stage, split_dropped
from codekiln.stream.sharded import files
from codekiln.stream.sharded.plan import MapStep, Shard
from codekiln.stream.stage import Stage
from codekiln.stream.writers.sink import RunSink

_BUILT: dict[str, dict[str, Stage]] = {}


def config_key(config: StreamConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True, default=str)


def stages_for(config: StreamConfig, keys: list[str] | None = None) -> dict[str, Stage]:
    """This worker's stage objects for ``config`` (built and opened once per process)."""
    key = config_key(config)
    built = _BUILT.get(key)
    if built is None:
        built = dict(build_stages(config).stages)
        if keys is not None and list(built) != keys:
            raise StageCrashed(
                "ray",
                f"this worker builds stages {list(built)} but the driver planned {keys}: "
                "install the same codekiln (and optional stage dependencies) on every node",
            )
        root = Path(tempfile.mkdtemp(prefix="codekiln-ray-stages-"))
        for name, stage in built.items():
            (root / name).mkdir()
            stage.open(root / name)
        _BUILT.clear()
        _BUILT[key] = built
    return built


@dataclass(frozen=True)
class Layout:
    """Where a run's files live; ``out_dir`` must be storage every node shares."""

    out_dir: Path

    @property
    def root(self) -> Path:
        return self.out_dir / ".codekiln" / "ray"

    def step_dir(self, step: int) -> Path:
        return self.root / "steps" / f"{step:02d}"

    def shard_file(self, step: int, shard: int) -> Path:
        return self.step_dir(step) / f"s{shard:05d}.bin"

    def marker(self, step: int, shard: int) -> Path:
        return self.step_dir(step) / f"done-s{shard:05d}.json"

    def step_marker(self, step: int) -> Path:
        return self.step_dir(step) / "done.json"

    def result(self, step: int) -> Path:
        return self.step_dir(step) / "result.pkl"


@dataclass(frozen=True)
class MapJob:
    """Everything a map task needs besides its shard (shipped once per step)."""

    config: StreamConfig
    layout: Layout
    step: MapStep
    #: Step whose shard files this step reads; None: read the input itself.
    source_step: int | None
    #: "exact" | "fuzzy" | None: the kind of the dedup result applied on read.
    apply_method: str | None
    start: int
    #: Stage keys as the driver built them (a worker that builds others must not run).
    keys: list[str] | None = None


# -- reading -------------------------------------------------------------------------------


def read_input(shard: Shard, config: StreamConfig, batch_size: int) -> Iterator[list[Record]]:
    """The shard's records, read by the single-machine reader of its input."""
    if shard.kind == "missing":
        yield [r for _, r in MissingInput(shard.path).items(None, Budget())]
        return
    reader = make_reader(Path(shard.path), config.input)
    budget = Budget()
    if shard.kind == "tree":
        after = (shard.start - 1,) if shard.start > 0 else None
        end = shard.end
        items = itertools.takewhile(
            lambda it: end is None or it[0][0] < end, reader.items(after, budget)
        )
    else:
        items = itertools.takewhile(
            lambda it: it[0][0] == shard.start, reader.items((shard.start, -1), budget)
        )
    records = (record for _, record in items)
    while batch := list(itertools.islice(records, batch_size)):
        yield batch


# -- map -------------------------------------------------------------------------------------


def _applier(
    job: MapJob, stages: dict[str, Stage], shard: int, result: Any
) -> Callable[[Record, int], None] | None:
    if job.step.apply is None:
        return None
    stage = stages[job.step.apply]
    applier: Callable[[Record, int], None]
    if job.apply_method == "exact":
        assert isinstance(stage, ExactDedupStage)
        applier = rexact.ExactApply(stage, shard, result or {})
    else:
        assert isinstance(stage, FuzzyDedupStage)
        if job.apply_method == "fuzzy_repo":
            applier = rfuzzy.RepoApply(stage, result or {})
        else:
            applier = rfuzzy.FuzzyApply(stage, result or {})
    return applier


def map_shard(job: MapJob, shard: Shard, result: Any) -> dict[str, Any]:
    """Read one shard (input or previous step), apply the dedup decision, run the stateless
    stages, attach MinHash for the next fuzzy step, and commit the output; returns the marker."""
    cpu_start = time.process_time()
    stages = stages_for(job.config, job.keys)
    layout, step = job.layout, job.step
    batch_size = job.config.runtime.batch_size
    metrics = RunMetrics([])
    if job.source_step is None:
        batches: Iterator[list[Record]] = read_input(shard, job.config, batch_size)
    else:
        batches = files.read_batches(layout.shard_file(job.source_step, shard.index))
    apply = _applier(job, stages, shard.index, result)
    prepare = stages[step.prepare] if step.prepare else None
    computed_here = 0
    for key in step.counted:  # per-shard counters: a retried shard never counts twice
        stages[key].load_state_dict({})
    if step.final:
        sink = _final_sink(job, shard.index)
    else:
        out = files.ShardFileWriter(layout.shard_file(step.index, shard.index))
    local = 0
    try:
        for batch in batches:
            if job.source_step is None:
                live, dropped = split_dropped(batch)
                metrics.step("source").count(len(batch), live, dropped)
            elif apply is not None:
                assert step.apply is not None
                m = metrics.step(step.apply)
                for i, record in enumerate(batch):
                    if record.drop_reason is None:
                        m.records_in += 1
                        apply(record, local + i)
                        if record.drop_reason is not None:
                            m.dropped[record.drop_reason] += 1
                    elif job.apply_method in ("fuzzy", "fuzzy_repo"):
                        take_minhash(record)
                live, dropped = split_dropped(batch)
                m.records_out += len(live)
            else:
                live, dropped = split_dropped(batch)
            local += len(batch)
            for key in step.stages:
                if not live:
                    break
                started = time.perf_counter()
                new_live, new_dropped = split_dropped(run_stage(key, stages[key], live))
                metrics.step(key).busy_s += time.perf_counter() - started
                metrics.step(key).count(len(live), new_live, new_dropped)
                live, dropped = new_live, dropped + new_dropped
            if prepare is not None and live:
                # The dedup stage's own per-record steps (MinHash where missing, the checks
                # that quarantine a record it cannot hold), as its process_batch makes them.
                assert step.prepare is not None
                assert isinstance(prepare, ExactDedupStage | FuzzyDedupStage)
                computed_here += prepare.admit(live)
                live, quarantined = split_dropped(live)
                if quarantined:  # counted as the local run counts them: in, and dropped
                    m = metrics.step(step.prepare)
                    m.records_in += len(quarantined)
                    for r in quarantined:
                        m.dropped[r.drop_reason or "?"] += 1
                    dropped += quarantined
            if step.final:
                sink.write(live, dropped)
                m = metrics.step("sink")
                m.records_in += len(live) + len(dropped)
                m.records_out += len(live)
                m.batches += 1
            else:
                out.write(dropped + live)
        marker: dict[str, Any] = {"shard": shard.index, "start": job.start, "pid": os.getpid()}
        if step.final:
            marker.update(sink.commit())  # corpus and rejects shards, langs, reasons
        else:
            out.commit()
            marker["records"] = out.records
        marker["metrics"] = metrics.snapshot()
        marker["computed_here"] = computed_here
        marker["states"] = {key: stages[key].state_dict() for key in step.counted}
        marker["cpu_s"] = round(time.process_time() - cpu_start, 4)
    except BaseException:
        if step.final:
            sink.abort()
        else:
            out.abort()
        raise
    files.write_json(layout.marker(step.index, shard.index), marker)
    return marker


def _final_sink(job: MapJob, shard: int) -> RunSink:
    """The run's sink, for the corpus and rejects shards of one input shard
    (``part-sNNNNN-*``), after deleting what an earlier try left."""
    prefix = f"part-s{shard:05d}"
    for folder in ("corpus", "rejects"):
        path = job.layout.out_dir / folder
        path.mkdir(parents=True, exist_ok=True)
        for old in path.iterdir():
            if old.name.startswith((prefix + "-", f".{prefix}-")):
                old.unlink(missing_ok=True)
    return RunSink(job.layout.out_dir, job.config.output, prefix)


# -- dedup shuffles ----------------------------------------------------------------------------


def exact_keys(
    layout: Layout, source_step: int, shard: int, stage: ExactDedupStage, partitions: int
) -> list[list[rexact.Entry]]:
    records = files.read_records(layout.shard_file(source_step, shard))
    parts: list[list[rexact.Entry]] = rexact.shard_keys(records, shard, stage, partitions)
    # With num_returns=1 Ray stores the return value itself as the one object.
    return parts[0] if partitions == 1 else parts  # type: ignore[return-value]


def exact_reduce(stage: ExactDedupStage, *per_shard: list[rexact.Entry]) -> rexact.Reduced:
    return rexact.reduce_partition(list(per_shard), stage)


def fuzzy_keys(
    layout: Layout, source_step: int, shard: int, stage: FuzzyDedupStage, partitions: int
) -> tuple[Any, ...]:
    records = files.read_records(layout.shard_file(source_step, shard))
    tables, local_edges, counts = rfuzzy.shard_keys(records, shard, stage.params, partitions)
    return (*tables, local_edges, counts)


def fuzzy_repo_keys(
    layout: Layout, source_step: int, shard: int, stage: FuzzyDedupStage, partitions: int
) -> tuple[Any, ...]:
    records = files.read_records(layout.shard_file(source_step, shard))
    parts, held = rfuzzy.repo_partials(records, stage, partitions)
    return (*parts, held)


def fuzzy_repo_merge(stage: FuzzyDedupStage, *partials: RepoPartial) -> Any:
    return rfuzzy.merge_repos(list(partials), stage)


def fuzzy_repo_cluster(stage: FuzzyDedupStage, *merged: Any) -> Any:
    return rfuzzy.cluster_repos(list(merged), stage)


def fuzzy_edges(*tables: Any) -> Any:
    return rfuzzy.partition_edges(list(tables))


def fuzzy_cluster(*edge_lists: Any) -> dict[int, dict[int, int]]:
    nodes, labels = rfuzzy.cluster(list(edge_lists))
    members: dict[int, dict[int, int]] = rfuzzy.members_by_shard(nodes, labels)
    return members


def fuzzy_members(
    layout: Layout, source_step: int, shard: int, members: dict[int, int], stage: FuzzyDedupStage
) -> list[rfuzzy.Member]:
    records = files.read_records(layout.shard_file(source_step, shard))
    out: list[rfuzzy.Member] = rfuzzy.shard_members(records, shard, members, stage.priority)
    return out


# -- serial ----------------------------------------------------------------------------------


def serial_step(  # noqa: PLR0917 - a Ray task: called positionally through .remote()
    stage_obj: Stage, layout: Layout, step: int, key: str, shards: list[int], start: int
) -> dict[str, Any]:
    """One stateful stage (a fresh instance, shipped by the driver) over every shard in input
    order: its state depends on every record before."""
    cpu_start = time.process_time()
    work = layout.step_dir(step) / "work"
    work.mkdir(parents=True, exist_ok=True)
    stage_obj.open(work)
    metrics = RunMetrics([])
    for shard in shards:
        out = files.ShardFileWriter(layout.shard_file(step, shard))
        for batch in files.read_batches(layout.shard_file(step - 1, shard)):
            live, dropped = split_dropped(batch)
            if live:
                started = time.perf_counter()
                new_live, new_dropped = split_dropped(run_stage(key, stage_obj, live))
                metrics.step(key).busy_s += time.perf_counter() - started
                metrics.step(key).count(len(live), new_live, new_dropped)
                live, dropped = new_live, dropped + new_dropped
            out.write(dropped + live)
        if shard == shards[-1]:  # records the stage held back join the last shard
            tail = list(stage_obj.finish())
            live, dropped = split_dropped(tail)
            m = metrics.step(key)
            m.records_out += len(live)
            for r in dropped:
                m.dropped[r.drop_reason or "?"] += 1
            out.write(dropped + live)
        out.commit()
    report = stage_obj.report()
    cpu_s = round(time.process_time() - cpu_start, 4)
    return {"start": start, "metrics": metrics.snapshot(), "report": report, "cpu_s": cpu_s}
