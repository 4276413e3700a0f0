"""What a sandbox job's answer means: evalplus's verdicts, and the harness's printed records.

:func:`verdict_of` maps a check job's :class:`~codekiln.sandbox.RunResult` to the status evalplus
would give (STATUS_MAP in docs/eval.md); :func:`parse_reference` and :func:`parse_progress` read
the records the harness (:mod:`codekiln.eval._harness`) prints between its markers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from codekiln.sandbox.client import RunResult

from . import _harness

__all__ = [
    "PASS",
    "Status",
    "Verdict",
    "assert_verdict",
    "describe_result",
    "parse_progress",
    "parse_reference",
    "verdict_of",
]

Status = Literal["pass", "fail", "timeout", "error"]
PASS: Status = "pass"

_FAIL_RE = re.compile(
    "(" + re.escape(_harness.FAIL_PREFIX) + "|" + re.escape(_harness.TIMEOUT_PREFIX) + ")"
    r"(-?\d+): (.*)",
    re.S,
)


@dataclass(frozen=True)
class Verdict:
    """One (sample, part) outcome, with evalplus's status names (plus "error": sandbox fault)."""

    status: Status
    fail_index: int | None = None
    message: str = ""


def _record(stdout: str, begin: str, end: str) -> Any:
    """The JSON the harness printed last between ``begin`` and ``end``; None if there is none."""
    start = stdout.rfind(begin)
    stop = stdout.rfind(end)
    if start < 0 or stop < start:
        return None
    try:
        return json.loads(stdout[start + len(begin) : stop])
    except ValueError:
        return None


def parse_reference(stdout: str) -> tuple[list[float], str, int] | None:
    obj = _record(stdout, _harness.REF_BEGIN, _harness.REF_END)
    try:
        return [float(t) for t in obj["times_s"]], str(obj["expected"]), int(obj["errors"])
    except (ValueError, KeyError, TypeError):
        return None


def describe_result(result: RunResult) -> str:
    parts: list[str] = [result.status]
    if result.reason:
        parts.append(result.reason)
    parts.extend(f"{t.name}: {t.status} {t.message}".strip() for t in result.tests if t.message)
    if result.stderr.strip():
        parts.append("stderr: " + result.stderr.strip()[-500:])
    return "; ".join(parts)[:2000]


def parse_progress(stdout: str) -> tuple[int | None, float, float] | None:
    obj = _record(stdout, _harness.PROGRESS_BEGIN, _harness.PROGRESS_END)
    try:
        nxt = obj["next"]
        return (
            None if nxt is None else int(nxt),
            float(obj["cpu_s"]),
            float(obj["load_cpu_s"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _settled(result: RunResult) -> Verdict | None:
    """The verdict of a job that passed, timed out or met a sandbox fault; None otherwise."""
    if result.status == "passed":
        return Verdict(PASS)
    if result.status == "timeout":
        return Verdict("timeout", message=describe_result(result))
    if result.status == "error":
        return Verdict("error", message=describe_result(result))
    return None


def assert_verdict(result: RunResult) -> Verdict:
    """An assert task's verdict: its test program passed, timed out, or failed ("fail")."""
    settled = _settled(result)
    return settled if settled is not None else Verdict("fail", message=describe_result(result))


def verdict_of(result: RunResult) -> Verdict:
    """The status evalplus would give: see STATUS_MAP in docs/eval.md."""
    settled = _settled(result)
    if settled is not None:
        return settled
    for test in result.tests:
        match = _FAIL_RE.search(test.message)
        if match:
            index = int(match.group(2))
            status: Status = "fail" if match.group(1) == _harness.FAIL_PREFIX else "timeout"
            return Verdict(
                status, fail_index=index if index >= 0 else None, message=match.group(3)[:1000]
            )
    if result.status == "failed":
        # The process ended without the harness's verdict (os._exit, a signal): evalplus's
        # child then leaves its status unset, which evalplus reports as "timeout".
        return Verdict(
            "timeout", message="the process ended without a verdict: " + describe_result(result)
        )
    # memory_exceeded (evalplus: a MemoryError under its rlimit, a failed input), output_exceeded
    return Verdict("fail", message=describe_result(result))
