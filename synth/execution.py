"""The execution filter: run a sample's code and tests in the sandbox; keep it only if they pass.

Python samples go in as ``code`` + ``tests`` (the sandbox runs the tests in the code's
namespace, one verdict per test). Other languages go in as one program, the code followed by
its test program, which must exit 0. Verdicts: ``passed`` keeps the sample; any other sandbox
status drops it with the rule ``exec:<status>`` (``exec:failed``, ``exec:timeout``, ...). A
sandbox that cannot judge (down, overloaded past retries, bad reply) raises
:class:`~.errors.ExecutionError`, and the sample is quarantined, not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codekiln.sandbox.client import RunRequest, RunResult, SandboxClient
from codekiln.sandbox.errors import SandboxError

from .errors import ExecutionError

__all__ = ["EXECUTABLE_LANGUAGES", "ExecutionFilter", "Verdict"]

#: Languages the sandbox image runs (codekiln.sandbox.languages).
EXECUTABLE_LANGUAGES = ("python", "c", "cpp", "javascript", "bash")


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    status: str
    detail: dict[str, Any]

    @property
    def rule(self) -> str:
        return f"exec:{self.status}"


class ExecutionFilter:
    """Judges samples through a :class:`SandboxClient` the caller owns."""

    def __init__(
        self, sandbox: SandboxClient, *, timeout_s: float = 10.0, memory_mb: int = 256
    ) -> None:
        self.sandbox = sandbox
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb

    def request(self, code: str, tests: str, language: str = "python") -> RunRequest:
        if language == "python":
            return RunRequest(
                language="python",
                code=code,
                tests=tests,
                timeout_s=self.timeout_s,
                memory_mb=self.memory_mb,
            )
        return RunRequest(
            language=language,
            code=f"{code}\n\n{tests}\n",
            tests=None,
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
        )

    async def judge(self, code: str, tests: str, language: str = "python") -> Verdict:
        if language not in EXECUTABLE_LANGUAGES:
            return Verdict(False, "unsupported_language", {"language": language})
        try:
            result = await self.sandbox.run(self.request(code, tests, language))
        except SandboxError as exc:
            raise ExecutionError(f"sandbox could not run the sample: {exc}") from exc
        return _verdict(result)


def _verdict(result: RunResult) -> Verdict:
    tests = list(result.tests or [])
    detail: dict[str, Any] = {
        "status": result.status,
        "exit_code": result.exit_code,
        "wall_s": result.wall_s,
        "tests": len(tests),
        "tests_passed": sum(1 for t in tests if t.status == "passed"),
    }
    if result.status != "passed":
        detail["stderr"] = (result.stderr or "")[-500:]
    return Verdict(result.status == "passed", result.status, detail)
