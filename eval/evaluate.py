"""Evaluate samples: read them, run every (sample, part) in the sandbox, write evalplus results.

Samples are evalplus's JSONL (``task_id`` with ``solution``, or ``completion`` appended to the
task prompt). A line that cannot be used (bad JSON, unknown task, no code) is quarantined with
its reason and counted; the rest is evaluated. Verdicts are appended to ``verdicts.jsonl`` as
they arrive, so an interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from codekiln import shards

from .data import Dataset
from .errors import SampleError, SamplesNotFound
from .execute import Evaluator, harness_version
from .passk import mean_pass_at_k
from .verdicts import PASS, Verdict

RESULTS_FILE = "eval_results.json"
VERDICTS_FILE = "verdicts.jsonl"
QUARANTINE_FILE = "quarantine.jsonl"


@dataclass(frozen=True)
class Sample:
    task_id: str
    solution: str
    line: int

    @property
    def key(self) -> str:
        digest = hashlib.sha256(self.solution.encode()).hexdigest()[:16]
        return f"{self.task_id}|{self.line}|{digest}"


@dataclass
class Quarantine:
    """Sample lines that could not be evaluated, with their reasons."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, line: int, reason: str, raw: str = "") -> None:
        self.records.append({"line": line, "reason": reason, "raw": raw[:500]})

    def counts(self) -> dict[str, int]:
        return dict(Counter(r["reason"].split(":")[0] for r in self.records))


def read_samples(path: Path, dataset: Dataset) -> tuple[list[Sample], Quarantine]:
    """Read evalplus samples JSONL; unusable lines go to the quarantine, never silently away.

    A ``.gz`` or ``.zst`` file is decompressed (codekiln.shards, as every component reads
    shards); a stream cut short quarantines the rest as ``corrupt``. A file with no usable
    sample at all is a :class:`SampleError` (evaluating nothing is not a score).
    """
    if not path.is_file():
        raise SamplesNotFound(f"samples file not found: {path}")
    samples: list[Sample] = []
    quarantine = Quarantine()
    for lineno, rec, raw in _sample_objects(path, quarantine):
        if not isinstance(rec, dict) or not isinstance(rec.get("task_id"), str):
            quarantine.add(lineno, "no task_id", raw)
            continue
        task = dataset.tasks.get(rec["task_id"])
        if task is None:
            quarantine.add(lineno, f"unknown task: {rec['task_id']} is not in {dataset.label}")
            continue
        if isinstance(rec.get("solution"), str):
            solution = rec["solution"]
        elif isinstance(rec.get("completion"), str):
            solution = task.prompt + rec["completion"]
        else:
            quarantine.add(lineno, "no code: neither a string solution nor completion", raw)
            continue
        samples.append(Sample(task_id=task.task_id, solution=solution, line=lineno))
    if not samples:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(quarantine.counts().items()))
        raise SampleError(
            f"no usable sample in {path}"
            + (f": {len(quarantine.records)} lines quarantined ({reasons})" if reasons else "")
            + " (evalplus JSONL: task_id with solution or completion; .gz/.zst compressed)"
        )
    return samples, quarantine


def _sample_objects(path: Path, quarantine: Quarantine) -> Iterator[tuple[int, Any, str]]:
    """(line number, parsed JSON value, raw line) of each non-blank line; lines that are not
    JSON go to ``quarantine``."""
    if path.name.endswith((".gz", ".zst")):
        for lineno, item in shards.iter_numbered(path, fmt="jsonl"):
            if isinstance(item, shards.BadLine):
                reason = "corrupt" if item.reason == "corrupt" else "bad json"
                quarantine.add(lineno, f"{reason}: {item.error}")
            else:
                yield lineno, item, json.dumps(item)[:500]
        return
    with path.open(encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError as exc:
                quarantine.add(lineno, f"bad json: {exc}", raw)
                continue
            yield lineno, rec, raw


def _load_verdicts(path: Path) -> dict[str, dict[str, Verdict]]:
    done: dict[str, dict[str, Verdict]] = {}
    if not path.is_file():
        return done
    with path.open(encoding="utf-8") as f:
        for raw in f:
            try:
                rec = json.loads(raw)
                done[rec["key"]] = {
                    part: Verdict(v["status"], v.get("fail_index"), v.get("message", ""))
                    for part, v in rec["verdicts"].items()
                }
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line from an interrupted run: that sample is redone
    return done


@dataclass
class Evaluation:
    """Every sample's verdicts, in sample order."""

    dataset: Dataset
    samples: list[Sample]
    verdicts: list[dict[str, Verdict]]
    quarantine: Quarantine
    wall_s: float
    jobs_run: int
    sandbox_errors: int
    reference_issues: dict[str, str] = field(default_factory=dict)

    def pass_at_k(self) -> dict[str, dict[str, float]]:
        per_task: dict[str, list[dict[str, Verdict]]] = defaultdict(list)
        for sample, verdict in zip(self.samples, self.verdicts, strict=True):
            per_task[sample.task_id].append(verdict)
        out: dict[str, dict[str, float]] = {}
        base = [(len(v), sum(x["base"].status == PASS for x in v)) for v in per_task.values()]
        out["base"] = {k: 100.0 * p for k, p in mean_pass_at_k(base).items()}
        if self.dataset.kind == "differential":
            plus = [
                (len(v), sum(x["base"].status == PASS and x["plus"].status == PASS for x in v))
                for v in per_task.values()
            ]
            out["plus"] = {k: 100.0 * p for k, p in mean_pass_at_k(plus).items()}
        return out

    def missing_tasks(self) -> list[str]:
        seen = {s.task_id for s in self.samples}
        return [t for t in self.dataset.tasks if t not in seen]

    def to_json(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """evalplus's results layout (date, hash, eval) plus codekiln's fields."""
        ds = self.dataset
        evals: dict[str, list[dict[str, Any]]] = defaultdict(list)
        statuses: Counter[str] = Counter()
        for sample, verdict in zip(self.samples, self.verdicts, strict=True):
            task = ds.tasks[sample.task_id]
            entry: dict[str, Any] = {"task_id": sample.task_id, "solution": sample.solution}
            for part in ("base", "plus"):
                v = verdict.get(part)
                inputs = task.base_inputs if part == "base" else task.plus_inputs
                entry[f"{part}_status"] = v.status if v else None
                failing = (
                    [inputs[v.fail_index]]
                    if v and v.fail_index is not None and v.fail_index < len(inputs)
                    else []
                )
                entry[f"{part}_fail_tests"] = _jsonable(failing)
                if v and v.status != PASS:
                    entry[f"{part}_message"] = v.message
                if v:
                    statuses[f"{part}:{v.status}"] += 1
            evals[sample.task_id].append(entry)
        body: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
            "hash": ds.hash,
            "eval": dict(evals),
            "dataset": {
                "name": ds.name,
                "variant": ds.variant,
                "version": ds.version,
                "source": ds.source,
                "hash": ds.hash,
                "n_tasks": len(ds.tasks),
                "notes": list(ds.notes),
            },
            "pass_at_k": self.pass_at_k(),
            "pass_at_k_unit": "percent",
            "counts": {
                "samples": len(self.samples),
                "tasks_evaluated": len(evals),
                "missing_tasks": self.missing_tasks(),
                "statuses": dict(statuses),
                "quarantined": len(self.quarantine.records),
                "quarantine_reasons": self.quarantine.counts(),
                "sandbox_jobs": self.jobs_run,
                "sandbox_errors_retried": self.sandbox_errors,
            },
            "reference_issues": self.reference_issues,
            "harness_version": harness_version(),
            "wall_s": round(self.wall_s, 3),
        }
        if extra:
            body.update(extra)
        return body


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


async def evaluate_samples(
    evaluator: Evaluator,
    samples: list[Sample],
    quarantine: Quarantine,
    out_dir: Path | None = None,
    log: TextIO | None = None,
) -> Evaluation:
    """Evaluate every sample on every part; resume from ``out_dir/verdicts.jsonl`` if there."""
    log = log or sys.stderr
    started = time.monotonic()
    ds = evaluator.dataset
    done = _load_verdicts(out_dir / VERDICTS_FILE) if out_dir else {}
    todo = [s for s in samples if s.key not in done]
    tasks = [ds.tasks[t] for t in dict.fromkeys(s.task_id for s in todo)]
    _progress(log, f"{ds.label}: {len(samples)} samples, {len(samples) - len(todo)} already done")
    # References are not a separate phase: each sample's check waits for its task's
    # reference (computed once, under a lock), so checks of quick tasks fill the slots while
    # the slow references finish.
    _progress(log, f"  {len(tasks)} tasks to evaluate, {len(evaluator.parts())} part(s) each")
    sink = (out_dir / VERDICTS_FILE).open("a", encoding="utf-8") if out_dir else None
    counter = _Counter(log, "samples", len(todo))

    async def one(sample: Sample) -> None:
        task = ds.tasks[sample.task_id]
        verdicts: dict[str, Verdict] = {}
        for part in evaluator.parts():
            verdicts[part] = await evaluator.check(task, sample.solution, part)
        done[sample.key] = verdicts
        if sink is not None:
            rec = {"key": sample.key, "verdicts": {p: asdict(v) for p, v in verdicts.items()}}
            sink.write(json.dumps(rec) + "\n")
            sink.flush()
        counter.tick()

    try:
        async with asyncio.TaskGroup() as tg:
            for sample in todo:
                tg.create_task(one(sample))
    finally:
        if sink is not None:
            sink.close()
        evaluator.save_cache()
    return Evaluation(
        dataset=ds,
        samples=samples,
        verdicts=[done[s.key] for s in samples],
        quarantine=quarantine,
        wall_s=time.monotonic() - started,
        jobs_run=evaluator.jobs_run,
        sandbox_errors=evaluator.sandbox_errors,
        reference_issues=evaluator.reference_issues(),
    )


def _progress(log: TextIO, text: str) -> None:
    print(text, file=log, flush=True)


class _Counter:
    """Progress on stderr at most every 5 s, and at the end: count, rate and ETA.

    The first samples of a run also wait for their tasks' reference runs (tens of seconds
    for a whole benchmark), so the rate climbs once the references are in.
    """

    def __init__(self, log: TextIO, what: str, total: int) -> None:
        self.log, self.what, self.total = log, what, total
        self.n = 0
        self.started = self.last = time.monotonic()

    def tick(self) -> None:
        self.n += 1
        now = time.monotonic()
        if self.n == self.total or now - self.last >= 5.0:
            self.last = now
            _progress(self.log, f"  {self.what}: {self.n}/{self.total}{self.rate(now)}")

    def rate(self, now: float) -> str:
        elapsed = now - self.started
        if elapsed <= 0:
            return ""
        per_s = self.n / elapsed
        left = (self.total - self.n) / per_s if per_s > 0 else 0.0
        eta = f", ETA {left:.0f} s" if self.n < self.total else f", {elapsed:.0f} s"
        return f" ({per_s:.1f}/s{eta})"


def pass_at_k_lines(evaluation: Evaluation) -> list[str]:
    """The lines ``codekiln-eval evaluate`` prints: ``pass@1: 87.2`` for base and plus."""
    ds = evaluation.dataset
    scores = evaluation.pass_at_k()
    lines = [f"{ds.label} (base tests)"]
    lines += [f"{k}: {v:.1f}" for k, v in scores["base"].items()]
    if "plus" in scores:
        lines.append(f"{ds.label} (base + extra tests)")
        lines += [f"{k}: {v:.1f}" for k, v in scores["plus"].items()]
    missing = evaluation.missing_tasks()
    if missing:
        lines.append(
            f"warning: {len(missing)} of {len(ds.tasks)} tasks have no sample; "
            "pass@k is over the tasks that have samples"
        )
    for key, issue in evaluation.reference_issues.items():
        lines.append(f"warning: reference {key}: {issue}")
    if evaluation.quarantine.records:
        lines.append(
            f"warning: {len(evaluation.quarantine.records)} sample lines quarantined "
            f"({QUARANTINE_FILE})"
        )
    errors = sum(v.status == "error" for verdicts in evaluation.verdicts for v in verdicts.values())
    if errors:
        lines.append(f"warning: {errors} verdicts are sandbox errors (counted as not passed)")
    return lines


def write_outputs(
    evaluation: Evaluation, out_dir: Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write eval_results.json and quarantine.jsonl into ``out_dir``; return the results path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RESULTS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(evaluation.to_json(extra), indent=1), encoding="utf-8")
    tmp.replace(path)
    if evaluation.quarantine.records:
        with (out_dir / QUARANTINE_FILE).open("w", encoding="utf-8") as f:
            for rec in evaluation.quarantine.records:
                f.write(json.dumps(rec) + "\n")
    return path
