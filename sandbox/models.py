"""The wire format of the execution API: a run request, its result and per-test verdicts.

These are plain frozen dataclasses with ``to_json`` / ``from_json``; the server and the client
share them, so a field added here is added on both sides.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

from .errors import RequestInvalid

Status = Literal["passed", "failed", "timeout", "memory_exceeded", "output_exceeded", "error"]
STATUSES: tuple[str, ...] = get_args(Status)
TestStatus = Literal["passed", "failed", "error", "not_run"]
TEST_STATUSES: tuple[str, ...] = get_args(TestStatus)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 256


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One program to run, optionally with tests (see docs/sandbox.md for ``tests`` semantics)."""

    language: str
    code: str
    tests: str | None = None
    stdin: str = ""
    files: dict[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB

    def to_json(self) -> dict[str, Any]:
        """Every field, in declaration order (``files`` copied)."""
        return asdict(self)

    @classmethod
    def from_json(cls, obj: object) -> RunRequest:
        """Validate a decoded JSON object; raise RequestInvalid naming the first bad field."""
        if not isinstance(obj, dict):
            raise RequestInvalid("request must be a JSON object")
        unknown = set(obj) - _REQUEST_FIELDS
        if unknown:
            raise RequestInvalid(f"unknown field(s): {', '.join(sorted(unknown))}")
        language = obj.get("language")
        if not isinstance(language, str) or not language:
            raise RequestInvalid("language must be a non-empty string")
        code = obj.get("code")
        if not isinstance(code, str):
            raise RequestInvalid("code must be a string")
        tests = obj.get("tests")
        if tests is not None and not isinstance(tests, str):
            raise RequestInvalid("tests must be a string or null")
        stdin = obj.get("stdin", "")
        if not isinstance(stdin, str):
            raise RequestInvalid("stdin must be a string")
        files = obj.get("files") or {}
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            raise RequestInvalid("files must be an object mapping file names to string contents")
        for name in files:
            check_file_name(name)
        _check_utf8("code", code)
        if tests is not None:
            _check_utf8("tests", tests)
        _check_utf8("stdin", stdin)
        for name, content in files.items():
            _check_utf8(f"files[{name!r}]", content)
        timeout_s = obj.get("timeout_s", DEFAULT_TIMEOUT_S)
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, int | float)
            or not math.isfinite(timeout_s)
            or timeout_s <= 0
        ):
            raise RequestInvalid("timeout_s must be a positive number")
        memory_mb = obj.get("memory_mb", DEFAULT_MEMORY_MB)
        if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb <= 0:
            raise RequestInvalid("memory_mb must be a positive integer")
        return cls(
            language=language,
            code=code,
            tests=tests,
            stdin=stdin,
            files=dict(files),
            timeout_s=float(timeout_s),
            memory_mb=memory_mb,
        )


#: The keys a request may carry: RunRequest's fields, so a field added there is accepted.
_REQUEST_FIELDS = frozenset(f.name for f in fields(RunRequest))


def _check_utf8(what: str, text: str) -> None:
    """JSON can carry lone surrogates (``"\\ud800"``) that no UTF-8 file or pipe can hold: refuse
    them here, as a request error, instead of failing inside the container."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestInvalid(
            f"{what} is not valid Unicode text: lone surrogate at index {exc.start}"
        ) from exc


def check_file_name(name: str) -> None:
    """A job file name is one relative path component set: no absolute path, no '..', no NUL."""
    parts = name.split("/")
    if (
        not name
        or len(name) > 255
        or name.startswith("/")
        or "\0" in name
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise RequestInvalid(f"bad file name {name!r}: use a relative path without '..'")
    _check_utf8("a file name", name)


@dataclass(frozen=True, slots=True)
class TestVerdict:
    """The verdict of one test of a code-with-tests run."""

    __test__ = False  # not a pytest test class despite its name

    name: str
    status: TestStatus
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        """Every field, in declaration order."""
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TestVerdict:
        status = obj["status"]
        if status not in TEST_STATUSES:
            raise ValueError(f"unknown test status {status!r}")
        return cls(name=str(obj["name"]), status=status, message=str(obj.get("message", "")))


@dataclass(frozen=True, slots=True)
class RunResult:
    """What happened to one run. ``status`` is decided by the sandbox, never by the job."""

    status: Status
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    wall_s: float = 0.0
    cpu_s: float = 0.0
    memory_mb: float = 0.0
    tests: list[TestVerdict] = field(default_factory=list)
    # Why the sandbox chose an "error" or a limit status; empty for ordinary runs.
    reason: str = ""
    # The compile step's wall time (compiled languages; 0 otherwise): part of wall_s, but held
    # by its own limit (compile_timeout_s), not by timeout_s.
    compile_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_json(self) -> dict[str, Any]:
        """Every field, in declaration order; ``tests`` as their own ``to_json`` objects."""
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunResult:
        status = obj["status"]
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        return cls(
            status=status,
            exit_code=obj.get("exit_code"),
            signal=obj.get("signal"),
            stdout=obj.get("stdout", ""),
            stderr=obj.get("stderr", ""),
            truncated=bool(obj.get("truncated", False)),
            wall_s=float(obj.get("wall_s", 0.0)),
            cpu_s=float(obj.get("cpu_s", 0.0)),
            memory_mb=float(obj.get("memory_mb", 0.0)),
            tests=[TestVerdict.from_json(t) for t in obj.get("tests", [])],
            reason=str(obj.get("reason", "")),
            compile_s=float(obj.get("compile_s", 0.0)),
        )

    @classmethod
    def error(cls, reason: str, wall_s: float = 0.0) -> RunResult:
        return cls(status="error", reason=reason, wall_s=wall_s)
