"""The wire models' JSON, key for key and in order: ``to_json`` is derived from the dataclass
fields, so these pin what a /v1/run request and answer carry (the API tests pin the bytes)."""

from __future__ import annotations

import json

import pytest
from codekiln.sandbox.errors import RequestInvalid
from codekiln.sandbox.models import RunRequest, RunResult, TestVerdict

REQUEST = RunRequest(
    language="python",
    code="print(1)",
    tests="def test_a(): pass",
    stdin="in",
    files={"a.txt": "x", "d/b.txt": "y"},
    timeout_s=2.5,
    memory_mb=128,
)
REQUEST_JSON = {
    "language": "python",
    "code": "print(1)",
    "tests": "def test_a(): pass",
    "stdin": "in",
    "files": {"a.txt": "x", "d/b.txt": "y"},
    "timeout_s": 2.5,
    "memory_mb": 128,
}
RESULT = RunResult(
    status="failed",
    exit_code=1,
    signal=9,
    stdout="out",
    stderr="err",
    truncated=True,
    wall_s=1.25,
    cpu_s=0.5,
    memory_mb=12.5,
    tests=[TestVerdict("test_a", "passed"), TestVerdict("test_b", "failed", "assert 1 == 2")],
    reason="why",
    compile_s=0.75,
)
RESULT_JSON = {
    "status": "failed",
    "exit_code": 1,
    "signal": 9,
    "stdout": "out",
    "stderr": "err",
    "truncated": True,
    "wall_s": 1.25,
    "cpu_s": 0.5,
    "memory_mb": 12.5,
    "tests": [
        {"name": "test_a", "status": "passed", "message": ""},
        {"name": "test_b", "status": "failed", "message": "assert 1 == 2"},
    ],
    "reason": "why",
    "compile_s": 0.75,
}


def test_request_json_key_for_key_in_order_and_back() -> None:
    got = REQUEST.to_json()
    assert list(got.items()) == list(REQUEST_JSON.items())
    assert json.dumps(got) == json.dumps(REQUEST_JSON)
    assert got["files"] is not REQUEST.files  # a copy: the caller may change it
    assert RunRequest.from_json(json.loads(json.dumps(got))) == REQUEST


def test_result_json_key_for_key_in_order_and_back() -> None:
    got = RESULT.to_json()
    assert list(got.items()) == list(RESULT_JSON.items())
    assert [list(t) for t in got["tests"]] == [["name", "status", "message"]] * 2
    assert json.dumps(got) == json.dumps(RESULT_JSON)
    assert RunResult.from_json(json.loads(json.dumps(got))) == RESULT


@pytest.mark.parametrize("extra", ["bogus", "exit_code", "Language"])
def test_unknown_request_field_is_refused(extra: str) -> None:
    """Only RunRequest's own fields are accepted (a result field is no request field)."""
    with pytest.raises(RequestInvalid, match=f"unknown field\\(s\\): {extra}"):
        RunRequest.from_json({**REQUEST_JSON, extra: 1})
