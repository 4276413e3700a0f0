"""End to end on CPU: `codekiln-train run` trains the tiny preset and resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codekiln.train.cli import main


def _losses(cfg_path: Path) -> list[tuple[int, float]]:
    lines = (cfg_path.parent / "ckpt" / "metrics.jsonl").read_text().splitlines()
    return [(d["step"], d["loss"]) for d in map(json.loads, lines)]


def test_loss_falls(write_config: Any) -> None:
    """Eight steps of the tiny model on the corpus lower the loss."""
    cfg = write_config()
    assert main(["run", "--config", str(cfg)]) == 0
    losses = _losses(cfg)
    assert [s for s, _ in losses] == list(range(1, 9))
    assert losses[-1][1] < losses[0][1] - 0.5


def test_resume_matches_uninterrupted(write_config: Any, tmp_path: Path) -> None:
    """Stopping at step 3 and resuming gives the same loss curve as one uninterrupted run."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full = write_config(
        "a/train.yaml", checkpoint={"dir": str(tmp_path / "a" / "ckpt"), "every_steps": 3}
    )
    assert main(["run", "--config", str(full)]) == 0
    split = write_config(
        "b/train.yaml", checkpoint={"dir": str(tmp_path / "b" / "ckpt"), "every_steps": 3}
    )
    assert main(["run", "--config", str(split), "--stop-at-step", "3"]) == 0
    assert [s for s, _ in _losses(split)] == [1, 2, 3]
    assert main(["run", "--config", str(split)]) == 0
    assert _losses(split) == _losses(full)
