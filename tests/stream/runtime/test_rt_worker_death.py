"""A pool worker that dies mid-run: one clear crash message, no stray tracebacks."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.stream.procs import run_captured


def test_dead_worker_gives_one_clean_crash_message(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """Exit 1, the documented message, and no 'Future exception was never retrieved' noise."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(60):
        (src / f"m{i}.py").write_text(f"x_{i} = {i}\n" + ("DIE\n" if i == 30 else ""))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("stages: ['rt_stages:DieStage']\nruntime: {batch_size: 4, workers: 2}\n")
    done = run_captured(
        [sys.executable, "-m", "codekiln.stream.cli", "run", str(src), "--out",
         str(tmp_path / "out"), "--config", str(cfg), "--no-progress"],
        cli_env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "stage 'DieStage' crashed: a worker process died" in done.stderr
    assert "never retrieved" not in done.stderr
    assert "Traceback" not in done.stderr
