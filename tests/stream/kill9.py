"""SIGKILL a `codekiln-stream run` at chosen moments: the shared part of the kill -9 tests."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


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
    runs were killed before they finished."""
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
                kills += 1
        finally:
            proc.wait(timeout=30)
    return kills
