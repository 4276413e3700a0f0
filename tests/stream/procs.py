"""Run a command or a Python script to its end in a child process, output captured as text: the
shared part of the tests that drive the stream CLI or a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys


def run_captured(
    cmd: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``cmd`` run to its end with stdout and stderr captured; the caller checks the exit code."""
    return subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def run_python(code: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``code`` run by a fresh interpreter (a single thread, as the CLI is when it forks)."""
    return run_captured([sys.executable, "-c", code], env, timeout)
