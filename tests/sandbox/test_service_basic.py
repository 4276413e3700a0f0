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


async def test_files_are_importable_and_readable(sandbox_client: SandboxClient) -> None:
    """Request files land in the work directory: importable modules and data files."""
    r = await sandbox_client.run(
        RunRequest(
            language="python",
            code="import helper\nprint(helper.X, open('data/in.txt').read())",
            files={"helper.py": "X = 5\n", "data/in.txt": "hi"},
        )
    )
    assert (r.status, r.stdout) == ("passed", "5 hi\n"), r


async def test_failing_test_function_reports_message(sandbox_client: SandboxClient) -> None:
    """A failing test_* function is 'failed' with the assertion's text as its message."""
    r = await sandbox_client.run(
        RunRequest(
            language="python",
            code="def sq(x):\n    return x * 2\n",
            tests="def test_sq():\n    assert sq(3) == 9\n\n"
            "def test_zero():\n    assert sq(0) == 0\n",
        )
    )
    assert r.status == "failed"
    assert [(t.name, t.status) for t in r.tests] == [("test_sq", "failed"), ("test_zero", "passed")]
    assert "sq(3) == 9" in r.tests[0].message
