"""Issue 19: a CLI whose stdout reader went away (``codekiln-train deepspeed-config | head``)
ends quietly with exit 141 (128 + SIGPIPE, as docs/cli.md says): no traceback, no
"internal error", no "Exception ignored" from the interpreter's last flush."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codekiln.cli_common import EXIT_BROKEN_PIPE


def _closed_stdout(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python argv`` with stdout a pipe whose reading end is already closed: every
    write fails with EPIPE, as after ``| head`` has read its lines and left."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            check=False,
            timeout=120,
        )
    finally:
        os.close(write_end)


def _train_config(tmp_path: Path) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"deepspeed": {"zero_stage": 2}}))
    return path


def _stream_config(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("def a():\n    return 1\n")
    path = tmp_path / "stream.yaml"
    path.write_text(yaml.safe_dump({"stages": ["noop"]}))
    return path


def _eval_results(tmp_path: Path) -> Path:
    path = tmp_path / "run" / "eval_results.json"
    path.parent.mkdir()
    body = {
        "model": "my-coder",
        "dataset": {"name": "humaneval+", "variant": "full", "version": "v0.1.10", "n_tasks": 164},
        "pass_at_k": {"base": {"pass@1": 60.0}, "plus": {"pass@1": 55.0}},
    }
    path.write_text(json.dumps(body))
    return path


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(
            lambda t: ["-m", "codekiln.train.cli", "deepspeed-config", "--config",
                       str(_train_config(t)), "--world-size", "1"],
            id="train-deepspeed-config",
        ),
        pytest.param(
            lambda t: ["-m", "codekiln.stream.cli", "run", "src", "--out", "out", "--config",
                       str(_stream_config(t)), "--json", "--no-progress"],
            id="stream-run-json",
        ),
        pytest.param(lambda t: ["-m", "codekiln.synth.cli", "prompts"], id="synth-prompts"),
        pytest.param(lambda t: ["-m", "codekiln.sandbox.cli", "image", "tag"], id="sandbox-tag"),
        pytest.param(
            lambda t: ["-m", "codekiln.eval.cli", "compare", str(_eval_results(t)), "--json"],
            id="eval-compare-json",
        ),
    ],
)  # fmt: skip
def test_closed_stdout_ends_quietly(argv: object, tmp_path: Path) -> None:
    """Each CLI: a closed stdout is exit 141 and nothing on stderr."""
    assert callable(argv)
    proc = _closed_stdout(*argv(tmp_path), cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (EXIT_BROKEN_PIPE, "")
