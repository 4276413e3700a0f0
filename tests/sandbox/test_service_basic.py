"""The service end to end through the client: the paths other components rely on."""

from __future__ import annotations

import pytest
from codekiln.sandbox.client import RunRequest, SandboxClient

pytestmark = pytest.mark.docker


async def test_plain_python_run_passes_with_stdout(sandbox_client: SandboxClient) -> None:
    """A program that prints and exits 0 is 'passed' with its stdout."""
    r = await sandbox_client.run(RunRequest(language="python", code="print(6 * 7)"))
    assert (r.status, r.exit_code, r.stdout) == ("passed", 0, "42\n")


async def test_nonzero_exit_fails(sandbox_client: SandboxClient) -> None:
    """Without tests, a non-zero exit is 'failed' with its exit code."""
    r = await sandbox_client.run(RunRequest(language="python", code="import sys; sys.exit(3)"))
    assert (r.status, r.exit_code) == ("failed", 3)


async def test_tests_pass_and_are_listed(sandbox_client: SandboxClient) -> None:
    """Top-level asserts are one test each; all passing gives 'passed'."""
    r = await sandbox_client.run(
        RunRequest(
            language="python",
            code="def add(a, b):\n    return a + b\n",
            tests="assert add(1, 2) == 3\nassert add(-1, 1) == 0\n",
        )
    )
    assert r.status == "passed"
    assert [t.status for t in r.tests] == ["passed", "passed"]


async def test_batch_keeps_order(sandbox_client: SandboxClient) -> None:
    """run_batch answers in input order."""
    rs = await sandbox_client.run_batch(
        [RunRequest(language="python", code=f"print({i})") for i in range(6)]
    )
    assert [r.stdout for r in rs] == [f"{i}\n" for i in range(6)]
