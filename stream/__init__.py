"""codekiln.stream: the streaming RefineCode pipeline.

The stage contract (``Record``, ``Stage`` and its four kinds) imports nothing heavy; the
runtime names (``run_job``, ``load_config``, the error tree) load on first use.
"""

from __future__ import annotations

from codekiln.stream.lazy import lazy_getattr
from codekiln.stream.record import Record, record_id
from codekiln.stream.stage import BatchStage, FilterStage, FlatMapStage, MapStage, Stage

_LAZY = {
    "StreamConfig": "codekiln.stream.config",
    "load_config": "codekiln.stream.config",
    "JobSpec": "codekiln.stream.runtime.job",
    "JobResult": "codekiln.stream.runtime.job",
    "run_job": "codekiln.stream.runtime.job",
    "StreamError": "codekiln.stream.runtime.errors",
    "ConfigError": "codekiln.stream.runtime.errors",
    "InputError": "codekiln.stream.runtime.errors",
    "StageCrashed": "codekiln.stream.runtime.errors",
    "CheckpointError": "codekiln.stream.runtime.errors",
    "SinkError": "codekiln.stream.runtime.errors",
}

__all__ = [
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


__getattr__ = lazy_getattr(__name__, _LAZY)
