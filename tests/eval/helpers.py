"""What several eval tests set up the same way."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from codekiln.eval.data import load_dataset

from tests.fixtures.sandbox import SandboxService


def evaluate_canonical_argv(
    sandbox_service: SandboxService, data_dir: Path, tmp_path: Path, *, tasks: int, limit: int
) -> list[str]:
    """The ``codekiln-eval evaluate`` command line (``--limit limit``, results in
    ``tmp_path/out``) for a samples file of the first ``tasks`` HumanEval+ tasks' canonical
    solutions, written with the sandbox token file into ``tmp_path``."""
    chosen = list(load_dataset("humaneval+", data_dir).tasks.values())[:tasks]
    samples = tmp_path / "samples.jsonl"
    samples.write_text(
        "".join(json.dumps({"task_id": t.task_id, "solution": t.canonical}) + "\n" for t in chosen)
    )
    token = tmp_path / "token"
    token.write_text(sandbox_service.token)
    return [
        sys.executable, "-m", "codekiln.eval.cli", "evaluate", str(samples),
        "--dataset", "humaneval+", "--data-dir", str(data_dir), "--out", str(tmp_path / "out"),
        "--limit", str(limit), "--sandbox-url", sandbox_service.url,
        "--sandbox-token-file", str(token),
    ]  # fmt: skip
