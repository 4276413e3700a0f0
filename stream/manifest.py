"""``manifest.json``: the run's record, each key defined once here.

Every executor writes it through :func:`codekiln.stream.runtime.job.build_manifest` and reads
its counters as :class:`~codekiln.stream.metrics.StepCounts`. Steps composed above the engine
add an entry each under their own key once the corpus is committed (an open set, so the type
below lists the engine's keys only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from codekiln.shards import atomic_write_bytes

__all__ = [
    "FORMAT",
    "MANIFEST",
    "Manifest",
    "OutputEntry",
    "SkippedStage",
    "SourceEntry",
    "StageEntry",
    "write_manifest",
]

MANIFEST = "manifest.json"
FORMAT = "codekiln.stream.manifest/1"

#: One stage of the pipeline: what it is, its counts (StepCounts' keys), its report.
StageEntry = TypedDict(
    "StageEntry",
    {
        "key": str,
        "name": str,
        "class": str,
        "stateful": bool,
        "cpu_bound": bool,
        "in": int,
        "out": int,
        "dropped": dict[str, int],
        "busy_s": float,
        "report": dict[str, Any],
    },
)


class SkippedStage(TypedDict):
    name: str
    why: str


class SourceEntry(TypedDict):
    items: int
    records: int
    dropped: dict[str, int]
    budget: dict[str, Any]


class OutputEntry(TypedDict, total=False):
    """``corpus`` (with ``format``) or ``rejects`` (with ``reasons``)."""

    format: str
    records: int
    reasons: dict[str, int]
    shards: list[dict[str, Any]]


class Manifest(TypedDict, total=False):
    format: str
    complete: bool
    fingerprint: str
    starts: int
    checkpoints: int
    inputs: list[str]
    missing_inputs: list[str]
    config: dict[str, Any]
    notes: list[str]
    source: SourceEntry
    stages: list[StageEntry]
    skipped_stages: list[SkippedStage]
    corpus: OutputEntry
    rejects: OutputEntry
    langs: dict[str, int]
    elapsed_s: float
    #: How a distributed executor ran it (the Ray executor's shards and steps).
    executor: dict[str, Any]


def write_manifest(out_dir: Path, manifest: Mapping[str, Any]) -> None:
    atomic_write_bytes(
        out_dir / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()
    )
