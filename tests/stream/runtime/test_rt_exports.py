"""The public surface of codekiln.stream is what we mean to export."""

from __future__ import annotations

from types import ModuleType

import codekiln.stream
import codekiln.stream.runtime
import pytest

#: The error tree: exported by codekiln.stream and codekiln.stream.runtime alike.
ERRORS = [
    "CheckpointError",
    "ConfigError",
    "InputError",
    "SinkError",
    "StageCrashed",
    "StreamError",
]
#: The stage contract: a record and the stage kinds.
CONTRACT = ["BatchStage", "FilterStage", "FlatMapStage", "MapStage", "Record", "Stage", "record_id"]
#: What runs a job: its config, spec, result and entry point.
ENTRY_POINTS = ["JobResult", "JobSpec", "StreamConfig", "load_config", "run_job"]
#: The engine under the job.
ENGINE = ["Barrier", "Batch", "Pipeline", "PipelineOptions"]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (codekiln.stream, [*CONTRACT, *ENTRY_POINTS, *ERRORS]),
        (codekiln.stream.runtime, [*ENGINE, *ERRORS]),
    ],
    ids=["stream", "runtime"],
)
def test_exports(module: ModuleType, expected: list[str]) -> None:
    """codekiln.stream exports the stage contract, the job's entry points and the error tree;
    codekiln.stream.runtime the engine and the error tree; every name resolves."""
    assert sorted(module.__all__) == sorted(expected)
    for name in module.__all__:
        assert getattr(module, name) is not None


@pytest.mark.parametrize(
    "module", [codekiln.stream, codekiln.stream.runtime], ids=["stream", "runtime"]
)
def test_error_tree_has_one_root(module: ModuleType) -> None:
    """Every runtime error derives from StreamError."""
    for name in ERRORS:
        assert issubclass(getattr(module, name), module.StreamError)


def test_each_module_imports_on_its_own() -> None:
    """Every runtime module imports first in a fresh interpreter (no import cycle)."""
    import subprocess
    import sys

    modules = [
        "codekiln.stream.config",
        "codekiln.stream.readers",
        "codekiln.stream.writers",
        "codekiln.stream.runtime.job",
        "codekiln.stream.runtime.spec",
        "codekiln.stream.runtime.build",
        "codekiln.stream.runtime.manifests",
        "codekiln.stream.runtime.protocol",
        "codekiln.stream.runtime.pipeline",
        "codekiln.stream.cli",
        "codekiln.stream.worker",
        "codekiln.stream.report",
    ]
    code = "import importlib, sys; importlib.import_module(sys.argv[1])"
    for module in modules:
        proc = subprocess.run(
            [sys.executable, "-c", code, module], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"{module}: {proc.stderr[-500:]}"
