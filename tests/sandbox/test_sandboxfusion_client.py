"""The unmodified official SandboxFusion client (PyPI ``sandbox-fusion``) against an
authenticated codekiln: the token travels in the endpoint URL (``http://host:port/t/<token>``),
the only thing that client lets a user configure."""

from __future__ import annotations

import asyncio

import pytest
import sandbox_fusion
from sandbox_fusion import RunCodeRequest, SummaryMapping, summary_run_code_result

from tests.fixtures.sandbox import SandboxService

pytestmark = pytest.mark.docker

# The client's own summary of a response, with a distinct name for every outcome.
MAPPING = SummaryMapping(
    Success="passed",
    Failed="failed",
    CompileFailed="compile_failed",
    CompileTimeout="compile_timeout",
    RunFailed="run_failed",
    RunTimeout="run_timeout",
)

# language -> verdict -> program. "passed" prints "ok"; "run_failed" exits 3; "run_timeout"
# spins past run_timeout; "compile_failed" does not compile.
PROGRAMS: dict[str, dict[str, str]] = {
    "python": {
        "passed": "print(input() + 'k')",
        "run_failed": "import sys\nsys.exit(3)",
        "run_timeout": "while True:\n    pass",
    },
    "cpp": {
        "passed": (
            "#include <iostream>\n"
            'int main(){std::string s; std::cin >> s; std::cout << s << "k\\n";}'
        ),
        "run_failed": "int main(){return 3;}",
        "run_timeout": "int main(){volatile int x = 0; for(;;) x++;}",
        "compile_failed": "int main( {",
    },
    "nodejs": {
        "passed": "const s = require('fs').readFileSync(0, 'utf8').trim(); console.log(s + 'k')",
        "run_failed": "process.exit(3)",
        "run_timeout": "for (;;) {}",
    },
    "go": {
        "passed": 'package main\nimport "fmt"\nfunc main() { var s string; fmt.Scan(&s);'
        ' fmt.Println(s + "k") }',
        "run_failed": 'package main\nimport "os"\nfunc main() { os.Exit(3) }',
        "run_timeout": "package main\nfunc main() { for {} }",
        "compile_failed": "package main\nfunc main() { undefined() }",
    },
    "bash": {
        "passed": 'read s; echo "${s}k"',
        "run_failed": "exit 3",
        "run_timeout": "while true; do :; done",
    },
}
MATRIX = [(lang, verdict) for lang, cases in PROGRAMS.items() for verdict in cases]


def _endpoint(service: SandboxService, token: str | None = None) -> str:
    return f"{service.url}/t/{token or service.token}"


@pytest.mark.parametrize(("language", "verdict"), MATRIX, ids=[f"{a}-{b}" for a, b in MATRIX])
async def test_official_client_run_code_matrix(
    sandbox_service: SandboxService, language: str, verdict: str
) -> None:
    """The official async client gets the right verdict (its own summary) for each language."""
    # Only the spinning programs meet their limit; the others get room for a slow start.
    run_timeout = 1 if verdict == "run_timeout" else 20
    request = RunCodeRequest(
        code=PROGRAMS[language][verdict], language=language, stdin="o\n", run_timeout=run_timeout
    )
    response = await sandbox_fusion.run_code_async(
        request, endpoint=_endpoint(sandbox_service), max_attempts=1, client_timeout=60
    )
    assert summary_run_code_result(response, MAPPING) == verdict, response
    if verdict == "passed":
        assert response.run_result is not None
        assert response.run_result.stdout == "ok\n"
    if verdict == "run_failed":
        assert response.run_result is not None
        assert response.run_result.return_code == 3


def test_official_sync_client_with_set_endpoint(sandbox_service: SandboxService) -> None:
    """The sync client, configured the documented way (set_endpoint), runs code too."""
    sandbox_fusion.set_endpoint(_endpoint(sandbox_service))
    try:
        response = sandbox_fusion.run_code(
            RunCodeRequest(code="print(6 * 7)", language="python"), max_attempts=1
        )
    finally:
        sandbox_fusion.set_endpoint("http://localhost:8080")
    assert summary_run_code_result(response, MAPPING) == "passed"
    assert response.run_result is not None
    assert response.run_result.stdout == "42\n"


async def test_wrong_token_in_the_path_is_refused(sandbox_service: SandboxService) -> None:
    """A wrong token in the endpoint gets 401, which the official client raises; the service
    log never shows a token carried in the path."""
    wrong = "x" * len(sandbox_service.token)
    with pytest.raises(Exception, match="401"):
        await sandbox_fusion.run_code_async(
            RunCodeRequest(code="print(1)", language="python"),
            endpoint=_endpoint(sandbox_service, wrong),
            max_attempts=1,
        )
    await asyncio.sleep(0.2)  # the log line is written after the response
    log = sandbox_service.log_text()
    assert "/t/<token>/run_code" in log
    assert wrong not in log
    assert sandbox_service.token not in log
