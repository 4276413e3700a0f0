"""``POST /run_code``: SandboxFusion's request and response shapes over codekiln's runs.

Request: ``{"code", "language", "compile_timeout", "run_timeout", "memory_limit_MB", "stdin",
"files": {path: base64 or null}, "fetch_files": [...]}``. Response: ``{"status": "Success" |
"Failed" | "SandboxError", "message", "compile_result", "run_result", "executor_pod_name",
"files"}`` where each result is ``{"status": "Finished" | "Error" | "TimeLimitExceeded",
"execution_time", "return_code", "stdout", "stderr"}``.

Differences: ``fetch_files`` is refused (the work directory is wiped after every run); files
must decode to UTF-8 text; a bearer token is required as on every run route.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .errors import RequestInvalid
from .languages import Language
from .models import DEFAULT_MEMORY_MB, RunRequest, RunResult

# SandboxFusion language names that differ from ours.
_LANGUAGE_NAMES = {
    "nodejs": "javascript",
    "cpp": "cpp",
    "python": "python",
    "bash": "bash",
    "go": "go",
    "java": "java",
    "rust": "rust",
}
_FIELDS = frozenset(
    {
        "code",
        "language",
        "compile_timeout",
        "run_timeout",
        "memory_limit_MB",
        "stdin",
        "files",
        "fetch_files",
        "args",
    }
)


def to_run_request(obj: object) -> RunRequest:
    if not isinstance(obj, dict):
        raise RequestInvalid("request must be a JSON object")
    unknown = set(obj) - _FIELDS
    if unknown:
        raise RequestInvalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    if obj.get("fetch_files"):
        raise RequestInvalid("fetch_files is not supported: the work directory is wiped")
    if obj.get("args"):
        raise RequestInvalid("args is not supported")
    files: dict[str, str] = {}
    raw_files = obj.get("files") or {}
    if not isinstance(raw_files, dict):
        raise RequestInvalid("files must be an object of path -> base64 content")
    for name, content in raw_files.items():
        if content is None:
            continue
        if not isinstance(content, str):
            raise RequestInvalid(f"file {name!r}: content must be a base64 string")
        try:
            files[str(name)] = base64.b64decode(content, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise RequestInvalid(f"file {name!r}: not base64 of UTF-8 text ({exc})") from exc
    memory = obj.get("memory_limit_MB", -1)
    language = obj.get("language")
    return RunRequest.from_json(
        {
            "language": _LANGUAGE_NAMES.get(language, language)
            if isinstance(language, str)
            else language,
            "code": obj.get("code"),
            "stdin": obj.get("stdin") or "",
            "files": files,
            "timeout_s": obj.get("run_timeout", 10),
            "memory_mb": DEFAULT_MEMORY_MB
            if memory is None or (isinstance(memory, int) and memory <= 0)
            else memory,
        }
    )


def _command(result: RunResult, *, stdout: str, stderr: str) -> dict[str, Any]:
    if result.status == "timeout":
        status = "TimeLimitExceeded"
    elif result.status == "error":
        status = "Error"
    else:
        status = "Finished"
    return_code = result.exit_code
    if return_code is None and result.signal is not None:
        return_code = -result.signal
    return {
        "status": status,
        "execution_time": result.wall_s,
        "return_code": return_code,
        "stdout": stdout,
        "stderr": stderr,
    }


def to_response(result: RunResult, lang: Language) -> dict[str, Any]:
    compile_result: dict[str, Any] | None = None
    run_result: dict[str, Any] | None = None
    if lang.compile and result.reason == "compilation failed":
        compile_result = _command(result, stdout=result.stdout, stderr=result.stderr)
    else:
        if lang.compile:
            compile_result = {
                "status": "Finished",
                "execution_time": None,
                "return_code": 0,
                "stdout": "",
                "stderr": "",
            }
        run_result = _command(result, stdout=result.stdout, stderr=result.stderr)
    if result.status == "passed":
        status, message = "Success", ""
    elif result.status == "error":
        status, message = "SandboxError", result.reason
    else:
        status, message = "Failed", result.reason or result.status
    return {
        "status": status,
        "message": message,
        "compile_result": compile_result,
        "run_result": run_result,
        "executor_pod_name": None,
        "files": {},
    }
