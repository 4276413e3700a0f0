"""The public surface of codekiln.stream is what we mean to export."""

from __future__ import annotations

import codekiln.stream
import codekiln.stream.runtime


def test_stream_exports() -> None:
    """codekiln.stream exports the stage contract and the runtime entry points, all resolvable."""
    assert sorted(codekiln.stream.__all__) == [
        "BatchStage",
        "CheckpointError",
        "ConfigError",
        "FilterStage",
        "FlatMapStage",
        "InputError",
        "JobResult",
        "JobSpec",
        "MapStage",
        "Record",
        "SinkError",
        "Stage",
        "StageCrashed",
        "StreamConfig",
        "StreamError",
        "load_config",
        "record_id",
        "run_job",
    ]
    for name in codekiln.stream.__all__:
        assert getattr(codekiln.stream, name) is not None


def test_error_tree_has_one_root() -> None:
    """Every runtime error derives from StreamError."""
    s = codekiln.stream
    for exc in (s.ConfigError, s.InputError, s.StageCrashed, s.CheckpointError, s.SinkError):
        assert issubclass(exc, s.StreamError)


def test_runtime_exports() -> None:
    """codekiln.stream.runtime exports the engine and the error tree."""
    assert sorted(codekiln.stream.runtime.__all__) == [
        "Barrier",
        "Batch",
        "CheckpointError",
        "ConfigError",
        "InputError",
        "Pipeline",
        "PipelineOptions",
        "SinkError",
        "StageCrashed",
        "StreamError",
    ]
    for name in codekiln.stream.runtime.__all__:
        assert getattr(codekiln.stream.runtime, name) is not None


def test_each_module_imports_on_its_own() -> None:
    """Every runtime module imports first in a fresh interpreter (no import cycle)."""
    import subprocess
    import sys

    modules = [
        "codekiln.stream.config",
        "codekiln.stream.readers",
        "codekiln.stream.writers",
        "codekiln.stream.runtime.job",
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
