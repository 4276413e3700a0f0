"""Checkpoints that resume bit-for-bit: model, optimiser, scheduler, data position and RNGs.

Layout under ``checkpoint.dir``::

    step-00000010/   model.pt optim.pt sched.pt rng.pt state.json   (plain torch / DDP)
    step-00000010/   ds/...  state.json                            (DeepSpeed ZeRO engines)
    latest           the name of the newest complete step directory
    metrics.jsonl    one line per logged step (rewritten to the resumed step on resume)

A step directory is written under a temporary name and renamed when complete, and ``latest`` is
replaced atomically after that, so a run killed mid-save resumes from the previous checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from codekiln.train.errors import CheckpointError


@dataclass(frozen=True, slots=True)
class Resumed:
    step: int
    data_state: dict[str, Any]
    path: Path


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:08d}"


def latest(root: Path) -> Path | None:
    pointer = root / "latest"
    if not pointer.is_file():
        return None
    path = root / pointer.read_text().strip()
    if not (path / "state.json").is_file():
        raise CheckpointError(f"{pointer} names {path.name}, which is incomplete or missing")
    return path


def rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(
    root: Path,
    step: int,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    data_state: dict[str, Any],
    engine: Any = None,
    is_main: bool = True,
    keep_last: int = 2,
    rank: int = 0,
) -> Path:
    """Write a checkpoint for ``step``; every rank calls it (DeepSpeed shards per rank)."""
    import torch

    final = step_dir(root, step)
    tmp = root / f".tmp-step-{step:08d}"
    if is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier()
    if engine is not None:
        engine.save_checkpoint(str(tmp / "ds"), tag="state", client_state={})
    elif is_main:
        torch.save(_unwrap(model).state_dict(), tmp / "model.pt")
        torch.save(optimizer.state_dict(), tmp / "optim.pt")
    # Every rank keeps its own RNG state (they differ when dropout is on).
    torch.save(rng_state(), tmp / f"rng-{rank}.pt")
    _barrier()
    if is_main:
        torch.save(scheduler.state_dict(), tmp / "sched.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, "data": data_state}))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        pointer_tmp = root / "latest.tmp"
        pointer_tmp.write_text(final.name)
        os.replace(pointer_tmp, root / "latest")
        _prune(root, keep_last)
    _barrier()
    return final


def load(
    path: Path,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    engine: Any = None,
    rank: int = 0,
) -> Resumed:
    import torch

    try:
        state = json.loads((path / "state.json").read_text())
        if engine is not None:
            engine.load_checkpoint(str(path / "ds"), tag="state")
        else:
            _unwrap(model).load_state_dict(torch.load(path / "model.pt", weights_only=True))
            optimizer.load_state_dict(torch.load(path / "optim.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(path / "sched.pt", weights_only=True))
        rng_file = path / f"rng-{rank}.pt"
        if rng_file.is_file():
            set_rng_state(torch.load(rng_file, weights_only=False))
    except (OSError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot resume from {path}: {exc}") from exc
    return Resumed(step=int(state["step"]), data_state=state["data"], path=path)


def _unwrap(model: Any) -> Any:
    return getattr(model, "module", model)


def _prune(root: Path, keep_last: int) -> None:
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in steps[: max(0, len(steps) - keep_last)]:
        shutil.rmtree(old, ignore_errors=True)


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
