"""SIGKILL a `codekiln-stream run` at chosen moments: the shared part of the kill -9 tests."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from codekiln.stream.runtime import checkpoint

from tests.stream.procs import run_captured

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def kill_runs(
    cmd: list[str],
    out: Path,
    env: dict[str, str],
    delays: Sequence[float | None],
    max_after: float = 0.3,
) -> int:
    """Start ``cmd`` once per entry of ``delays`` and SIGKILL its process group (the run and
    its pool workers): after that many seconds, or for ``None`` at a random moment up to
    ``max_after`` seconds after the run wrote a new checkpoint into ``out``. Returns how many
    runs were killed before they finished: a kill that lands after the run committed its last
    checkpoint (the process is still exiting) does not count."""
    ckpt = out / ".codekiln" / "checkpoint.pkl"
    kills = 0
    for delay in delays:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        try:
            if delay is None:
                before = ckpt.stat().st_mtime_ns if ckpt.exists() else 0
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and proc.poll() is None:
                    if ckpt.exists() and ckpt.stat().st_mtime_ns != before:
                        break
                    time.sleep(0.01)
                time.sleep(random.uniform(0, max_after))
            else:
                time.sleep(delay)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                kills += not _complete(out)
        finally:
            proc.wait(timeout=30)
    return kills


def _complete(out: Path) -> bool:
    """Whether the run into ``out`` committed its final checkpoint (its commit point)."""
    ckpt = checkpoint.load(out)
    return ckpt is not None and ckpt.complete


def stream_cli(inp: Path, out: Path, cfg: Path) -> list[str]:
    """``codekiln-stream run`` of ``inp`` into ``out`` with the config file ``cfg``."""
    return [sys.executable, "-m", "codekiln.stream.cli", "run", str(inp), "--out", str(out),
            "--config", str(cfg), "--no-progress"]  # fmt: skip


def repo_env(*drop: str) -> dict[str, str]:
    """This environment with the repository importable, less the variables named in ``drop``."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def clean_and_resumed(
    tmp: Path,
    inp: Path,
    config: dict[str, Any],
    summary: Callable[[Path], T],
    *,
    env: dict[str, str],
    max_after: float,
) -> tuple[T, T]:
    """``summary`` of a clean run of ``inp`` with ``config``, and of a run SIGKILLed three times
    (at random moments up to ``max_after`` s after a checkpoint, at least once before its end)
    then run to its end: that one must exit 0 and its manifest count at least two starts."""
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(config))
    ref = tmp / "ref"
    subprocess.run(stream_cli(inp, ref, cfg), env=env, check=True, capture_output=True,
                   timeout=240)  # fmt: skip
    out = tmp / "out"
    cmd = stream_cli(inp, out, cfg)
    kills = 0
    for _ in range(3):  # a loaded machine may finish the run before any kill: retry, sooner
        kills = kill_runs(cmd, out, env, [None] * 3, max_after)
        if kills:
            break
        shutil.rmtree(out)
        max_after /= 2
    assert kills >= 1, "the run finished before it could be killed; make the input bigger"
    done = run_captured(cmd, env, timeout=240)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "manifest.json").read_text())["starts"] >= 2
    return summary(ref), summary(out)
