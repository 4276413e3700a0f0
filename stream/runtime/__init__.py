"""The engine that drives stages: pipeline, process pool, checkpoints, batch job.

Only the error tree is imported eagerly (config and readers import it); the engine names load
on first use, which keeps this package free of import cycles.
"""

from __future__ import annotations

from codekiln.stream.lazy import lazy_getattr
from codekiln.stream.runtime.errors import (
    CheckpointError,
    ConfigError,
    InputError,
    SinkError,
    StageCrashed,
    StreamError,
)

_LAZY = dict.fromkeys(
    ("Barrier", "Batch", "Pipeline", "PipelineOptions"), "codekiln.stream.runtime.pipeline"
)

__all__ = [
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


__getattr__ = lazy_getattr(__name__, _LAZY)
