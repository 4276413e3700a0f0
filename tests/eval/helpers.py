"""What several eval tests set up the same way."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

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


def job_commands(docs: list[dict[str, Any]]) -> list[list[str]]:
    """The eval Job's shell script as the shell splits it: one argv per command joined by
    ``&&`` or ``;`` (a quoted ``&&`` inside a value stays in its word). The Job's container
    command must be ``["/bin/sh", "-c", script]``."""
    job = next(d for d in docs if d["kind"] == "Job")
    shell, flag, script = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    commands: list[list[str]] = [[]]
    for word in shlex.split(script):
        if word in ("&&", ";"):
            commands.append([])
        else:
            commands[-1].append(word)
    return commands
