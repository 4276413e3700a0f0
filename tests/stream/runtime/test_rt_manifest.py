"""manifest.json has the keys its typed records define (stream/manifest.py), and nothing else."""

from __future__ import annotations

import asyncio
import json
import typing
from pathlib import Path

from codekiln.stream.config import config_from_dict
from codekiln.stream.manifest import Manifest, OutputEntry, SourceEntry, StageEntry
from codekiln.stream.metrics import StepCounts
from codekiln.stream.runtime.job import JobSpec, run_job


def _keys(record: type) -> set[str]:
    return set(typing.get_type_hints(record))


def test_manifest_keys_are_the_typed_records(tmp_path: Path) -> None:
    """Every key of a real run's manifest is defined once, in the records that type it."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("def a():\n    return 1\n")
    (src / "b.py").write_text("def a():\n    return 1\n")
    config = config_from_dict({"stages": ["exact_dedup"], "runtime": {"workers": 1}})
    result = asyncio.run(run_job(JobSpec((str(src),), tmp_path / "out", config)))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest == json.loads(json.dumps(result.manifest))
    assert set(manifest) <= _keys(Manifest)
    assert set(manifest["source"]) == _keys(SourceEntry)
    assert {"corpus", "rejects"} <= set(manifest)
    assert set(manifest["corpus"]) | set(manifest["rejects"]) <= _keys(OutputEntry)
    [stage] = manifest["stages"]
    assert set(stage) == _keys(StageEntry)
    counts = {k for k in _keys(StepCounts) if k != "batches"}  # a stage entry shows no batches
    assert counts <= set(stage)
    assert stage["dropped"] == {"exact_dedup:duplicate": 1}
