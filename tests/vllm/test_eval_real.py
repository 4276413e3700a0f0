"""``codekiln-eval run`` against a real vLLM serving codekiln's own tiny model, in a real sandbox.

The model was trained for a minute on toy functions: its pass@1 is near 0, and that is what
these runs report. What they check is the plumbing: every request accepted by vLLM (no
``generation_failures.jsonl``), every answer parsed, every sample evaluated and counted once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.sandbox import SandboxService
from tests.fixtures.vllm import VLLMServer

pytestmark = [pytest.mark.vllm, pytest.mark.docker, pytest.mark.timeout(900)]

LIMIT = 4  # tasks per dataset: enough to see every code path, cheap on 2 cores


@pytest.fixture(scope="module")
def refcache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eval-references")


@pytest.fixture
def run_eval(
    vllm_server: VLLMServer, sandbox_service: SandboxService, refcache: Path, data_dir: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``codekiln-eval run`` as a process, on the first tasks of a dataset."""

    def run(out: Path, dataset: str, *args: str) -> subprocess.CompletedProcess[str]:
        token = out.parent / f"{out.name}.token"
        token.write_text(sandbox_service.token)
        cmd = [
            sys.executable, "-m", "codekiln.eval.cli", "run", "--endpoint", vllm_server.url,
            "--dataset", dataset, "--data-dir", str(data_dir),
            "--out", str(out), "--limit", str(LIMIT), "--max-tokens", "256",
            "--sandbox-url", sandbox_service.url, "--sandbox-token-file", str(token),
            "--reference-cache", str(refcache), *args,
        ]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)

    return run


def _pass_at_1(stdout: str) -> list[float]:
    return [float(line.split(":")[1]) for line in stdout.splitlines() if line.startswith("pass@1:")]


@pytest.mark.parametrize(
    ("dataset", "args"),
    [
        ("humaneval+", ("--mode", "base")),
        ("mbpp+", ("--mode", "base")),
        ("humaneval+", ("--mode", "instruct", "--samples", "2", "--temperature", "0.8")),
    ],
)
def test_eval_run_completes_and_counts_every_sample(
    run_eval: Callable[..., subprocess.CompletedProcess[str]],
    data_dir: Path,
    tmp_path: Path,
    dataset: str,
    args: tuple[str, ...],
) -> None:
    """Every request is accepted (more stop strings than vLLM takes), every sample evaluated."""
    out = tmp_path / "out"
    proc = run_eval(out, dataset, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (out / "generation_failures.jsonl").exists()
    scores = _pass_at_1(proc.stdout)
    assert len(scores) == 2, proc.stdout  # base tests, base + extra tests
    assert all(0.0 <= s <= 100.0 for s in scores)
    samples = 2 if "--samples" in args else 1
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == LIMIT * samples
    results = json.loads((out / "eval_results.json").read_text())
    assert sorted(results["eval"]) == sorted({json.loads(x)["task_id"] for x in lines})
    entries = [e for task in results["eval"].values() for e in task]
    assert len(entries) == LIMIT * samples
    assert all(e["base_status"] in ("pass", "fail", "timeout") for e in entries)
    raw = [json.loads(x)["raw"] for x in (out / "samples.raw.jsonl").read_text().splitlines()]
    assert len(raw) == LIMIT * samples
    if "base" in args:
        from codekiln.eval.data import load_dataset
        from codekiln.eval.prompts import stop_sequences

        stops = stop_sequences(load_dataset(dataset, data_dir))
        assert len(stops) > 4  # more than vLLM takes per request
        assert not [r for r in raw if any(s in r for s in stops)]


def test_eval_run_that_generates_nothing_exits_1(
    run_eval: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """Every request refused (a model the server does not serve): exit 1, the reason printed."""
    proc = run_eval(tmp_path / "out", "humaneval+", "--model", "no-such-model")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    assert "generation failed for all 4 tasks" in proc.stderr
    assert "no-such-model" in proc.stderr
    assert "pass@1" not in proc.stdout


def test_eval_max_tokens_over_the_context_exits_2(
    run_eval: Callable[..., subprocess.CompletedProcess[str]],
    vllm_server: VLLMServer,
    tmp_path: Path,
) -> None:
    """--max-tokens above the served max_model_len: exit 2 before any request."""
    too_many = str(vllm_server.max_model_len + 1)
    proc = run_eval(tmp_path / "out", "humaneval+", "--max-tokens", too_many)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"max_model_len={vllm_server.max_model_len}" in proc.stderr
