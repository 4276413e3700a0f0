"""The result of a run made shard by shard, collected from the markers its tasks committed:
the checkpoint the local runtime would have saved (counters summed over shards, each counted
stage's per-shard states merged by the stage (:meth:`~codekiln.stream.stage.Stage.merge_states`)
into the driver's copy, the corpus and rejects shards, the global steps' reports), so the
manifest and report are written by the same run protocol
(:func:`codekiln.stream.runtime.protocol.commit_run`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from codekiln.stream.metrics import RunMetrics
from codekiln.stream.readers.base import Budget
from codekiln.stream.runtime.build import BuiltStages
from codekiln.stream.runtime.checkpoint import Checkpoint
from codekiln.stream.runtime.manifests import stage_reports
from codekiln.stream.runtime.pipeline import Pipeline
from codekiln.stream.runtime.spec import JobSpec
from codekiln.stream.sharded import files
from codekiln.stream.sharded.plan import MapStep, SerialStep, Shard, Step
from codekiln.stream.sharded.tasks import Layout


def collect(  # noqa: PLR0917 - the run's parts, each by name
    spec: JobSpec,
    built: BuiltStages,
    layout: Layout,
    shards: list[Shard],
    steps: list[Step],
    plan: dict[str, Any],
    elapsed: float,
) -> tuple[Checkpoint, dict[str, Any]]:
    """The completed run as a checkpoint (what the local runtime would have saved)."""
    totals = RunMetrics(Pipeline.step_keys([k for k, _ in built.stages]))

    def add(metrics: dict[str, Any]) -> None:
        for key, m in metrics.items():
            totals.step(key).add(m)

    sink: dict[str, Any] = {"corpus": [], "rejects": [], "langs": Counter(), "reasons": Counter()}
    stages = dict(built.stages)
    counted: dict[str, list[dict[str, Any]]] = {}
    cpu_s = 0.0
    reports: dict[str, Any] = {}
    step_info = []
    for step in steps:
        if isinstance(step, MapStep):
            starts: Counter[int] = Counter()
            step_cpu = 0.0
            for s in shards:
                marker = files.read_json(layout.marker(step.index, s.index))
                starts[marker["start"]] += 1
                step_cpu += marker.get("cpu_s", 0.0)
                add(marker["metrics"])
                for key, state in marker.get("states", {}).items():
                    counted.setdefault(key, []).append(state)
                if step.final:
                    sink["corpus"] += marker["corpus"]
                    sink["rejects"] += marker["rejects"]
                    sink["langs"].update(marker["langs"])
                    sink["reasons"].update(marker["reasons"])
            cpu_s += step_cpu
            step_info.append(
                {
                    "kind": "map",
                    "stages": step.stages,
                    "apply": step.apply,
                    "shards_by_start": {str(k): v for k, v in sorted(starts.items())},
                    "cpu_s": round(step_cpu, 3),
                }
            )
        else:
            marker = files.read_json(layout.step_marker(step.index))
            reports[step.stage] = marker["report"]
            info = {"kind": step.kind, "stage": step.stage, "start": marker["start"]}
            if isinstance(step, SerialStep):
                cpu_s += marker.get("cpu_s", 0.0)
                info["cpu_s"] = marker.get("cpu_s", 0.0)
                add(marker["metrics"])
            step_info.append(info)
    for key, states in counted.items():  # the shards' states, merged, into the driver's copy
        stages[key].load_state_dict(stages[key].merge_states(states))
    for key, stage in built.stages:
        if key not in reports:
            reports[key] = stage_reports([(key, stage)])[key]
    metrics = totals.snapshot()
    ckpt = Checkpoint(
        fingerprint=plan["fingerprint"],
        source_state={"budget": Budget().state()},
        metrics=metrics,
        sink={**sink, "langs": dict(sink["langs"]), "reasons": dict(sink["reasons"])},
        complete=True,
        starts=plan["starts"],
        final={"reports": reports, "elapsed_s": round(elapsed, 3)},
    )
    executor = {
        "kind": "ray",
        "shards": len(shards),
        "shard_files": plan["shard_files"],
        "partitions": plan["partitions"],
        # CPU seconds of map and serial tasks (the dedup shuffles are not counted), all starts.
        "task_cpu_s": round(cpu_s, 3),
        "steps": step_info,
    }
    return ckpt, executor
