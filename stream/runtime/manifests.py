"""A run's ``manifest.json`` from its checkpoint, and its stages' reports: written the same by
every executor (the local runtime at each checkpoint and at the end, the Ray driver at the end).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from codekiln.stream.manifest import FORMAT, Manifest, StageEntry
from codekiln.stream.metrics import StepCounts
from codekiln.stream.readers.inputs import InputSet
from codekiln.stream.runtime.build import BuiltStages
from codekiln.stream.runtime.checkpoint import Checkpoint
from codekiln.stream.runtime.spec import JobSpec
from codekiln.stream.stage import Stage


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
