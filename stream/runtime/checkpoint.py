"""The run's checkpoint: one file, replaced atomically, holding everything a resume needs.

``<out>/.codekiln/checkpoint.pkl`` holds the source position and budget, every stateful stage's
pickled ``state_dict()``, the counters, and the sink's committed shards, all taken at the same
barrier (see :mod:`codekiln.stream.runtime.pipeline`). A crash at any moment leaves either the
previous checkpoint or the new one; shards written after the last checkpoint are deleted on
resume and written again, identically.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codekiln.stream.metrics import StepCounts
from codekiln.stream.readers.base import Position
from codekiln.stream.runtime.errors import CheckpointError

from codekiln.shards import atomic_write_bytes

VERSION = 1
STATE_DIR = ".codekiln"
FILE = "checkpoint.pkl"


@dataclass
class Checkpoint:
    fingerprint: str
    seq: int = 0
    position: Position | None = None
    source_state: dict[str, Any] | None = None
    stage_states: dict[str, bytes] = field(default_factory=dict)
    metrics: dict[str, StepCounts] = field(default_factory=dict)
    sink: dict[str, Any] | None = None
    complete: bool = False
    #: How many times this run was started on this output (1 = never resumed).
    starts: int = 1
    #: Final figures (stage reports) once complete.
    final: dict[str, Any] = field(default_factory=dict)


def checkpoint_path(out_dir: Path) -> Path:
    return out_dir / STATE_DIR / FILE


def save(out_dir: Path, ckpt: Checkpoint) -> None:
    path = checkpoint_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps({"version": VERSION, "checkpoint": ckpt}, protocol=pickle.HIGHEST_PROTOCOL)
    atomic_write_bytes(path, data)


def load(out_dir: Path) -> Checkpoint | None:
    path = checkpoint_path(out_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from exc
    try:
        obj = pickle.loads(data)
        if obj["version"] != VERSION:
            raise CheckpointError(
                f"checkpoint {path} has version {obj['version']}, expected {VERSION}"
            )
        ckpt = obj["checkpoint"]
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}); start over with --overwrite"
        ) from exc
    if not isinstance(ckpt, Checkpoint):
        raise CheckpointError(f"checkpoint {path} does not hold a checkpoint")
    return ckpt
