"""Annealing selection: tag algorithmic records for the annealing corpus.

OpenCoder's annealing data includes an *algorithmic corpus*: pretraining files that look like
solutions to programming problems (LeetCode, Codeforces, "def solution", "class Solution",
problem statements with sample input and output). Records whose text matches any configured
pattern get ``meta["corpus"] = "anneal"`` and ``meta["anneal_match"]`` (the first pattern that
matched); records that match nothing are left as they are (their corpus is the default,
``pretrain``).

How the split happens: the run's sink writes every live record to ``corpus/``; the annealing
mixture writer (``codekiln-stream anneal-mix``, :mod:`codekiln.stream.sampling.mixture`) reads
that corpus and takes records with ``meta.corpus == "anneal"`` as its algorithmic stream (and
the others as the original distribution unless ``exclusive`` is off). With ``exclusive: true``
the stage instead drops matched records from the main stream with reason
``anneal_route:anneal`` so they land in ``rejects/`` only, for pipelines that must keep the
pretraining corpus free of annealing data.

Patterns are regular expressions (Python syntax, case-insensitive); keywords are matched as
whole words. Both are configurable; the defaults are below. Keywords and the default patterns
are guarded by a substring check (the pattern's key word must occur in the lower-cased text),
so most records cost one ``lower()`` and a few ``in`` tests; user patterns have no such guard.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from codekiln.stream.record import Record
from codekiln.stream.stage import BatchStage

DEFAULT_KEYWORDS: tuple[str, ...] = (
    "leetcode",
    "codeforces",
    "atcoder",
    "hackerrank",
    "codechef",
    "topcoder",
    "spoj",
    "acm-icpc",
    "usaco",
)
#: A lower-case word every match of the default pattern contains: a plain substring check
#: skips the regular expression for the (vast) majority of records that lack it.
DEFAULT_HINTS: dict[str, str] = {
    "def_solution": "solution",
    "class_solution": "solution",
    "sample_io": "sample",
    "problem_constraints": "constraints",
    "time_complexity": "complexity",
}
DEFAULT_PATTERNS: dict[str, str] = {
    "def_solution": r"\bdef\s+solution\s*\(",
    "class_solution": r"\bclass\s+Solution\b",
    "sample_io": r"\bsample\s+input\b[\s\S]{0,2000}?\bsample\s+output\b",
    "problem_constraints": r"^\s*(?:#|//|\*)?\s*constraints\s*:",
    "time_complexity": r"\btime\s+complexity\s*:?\s*O\(",
}


class AnnealConfigError(ValueError):
    """A pattern does not compile or an option is malformed."""


class AnnealRouteStage(BatchStage):
    """Tag (or divert) records that match the annealing patterns."""

    name: ClassVar[str] = "anneal_route"
    # Counters are checkpointed so the report stays exact across a resume.
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        *,
        keywords: list[str] | tuple[str, ...] = DEFAULT_KEYWORDS,
        patterns: Mapping[str, str] | None = None,
        corpus: str = "anneal",
        exclusive: bool = False,
        max_scan_chars: int = 200_000,
    ) -> None:
        named = dict(DEFAULT_PATTERNS if patterns is None else patterns)
        hints = dict(DEFAULT_HINTS if patterns is None else {})
        for word in keywords:
            named[f"kw:{word}"] = rf"(?<![\w-]){re.escape(word)}(?![\w-])"
            hints[f"kw:{word}"] = word.lower()
        if not named:
            raise AnnealConfigError("anneal_route needs at least one keyword or pattern")
        # (label, required lower-case substring or "", compiled pattern)
        self._patterns: list[tuple[str, str, re.Pattern[str]]] = []
        for label, pattern in named.items():
            try:
                compiled = re.compile(pattern, re.I | re.M)
            except re.error as exc:
                raise AnnealConfigError(f"anneal_route pattern {label!r}: {exc}") from exc
            self._patterns.append((label, hints.get(label, ""), compiled))
        self.corpus = corpus
        self.exclusive = bool(exclusive)
        self.max_scan_chars = int(max_scan_chars)
        self.seen = 0
        self.matched: Counter[str] = Counter()
        self.matched_by_lang: Counter[str] = Counter()

    def match(self, text: str) -> str | None:
        """The label of the first pattern that matches ``text`` (scan capped), else None."""
        head = text[: self.max_scan_chars]
        lowered = head.lower()
        for label, hint, pattern in self._patterns:
            if (not hint or hint in lowered) and pattern.search(head):
                return label
        return None

    def process_batch(self, batch: list[Record]) -> list[Record]:
        for record in batch:
            if record.drop_reason is not None:
                continue
            self.seen += 1
            label = self.match(record.text)
            if label is None:
                continue
            self.matched[label] += 1
            self.matched_by_lang[record.lang or "unknown"] += 1
            record.meta["corpus"] = self.corpus
            record.meta["anneal_match"] = label
            if self.exclusive:
                record.drop_reason = f"{self.name}:{self.corpus}"
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "matched": dict(self.matched),
            "by_lang": dict(self.matched_by_lang),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seen = int(state.get("seen", 0))
        self.matched = Counter(state.get("matched", {}))
        self.matched_by_lang = Counter(state.get("by_lang", {}))

    def report(self) -> dict[str, Any]:
        total = sum(self.matched.values())
        return {
            "records_seen": self.seen,
            "routed": total,
            "corpus": self.corpus,
            "exclusive": self.exclusive,
            "by_pattern": dict(self.matched.most_common()),
            "by_language": dict(self.matched_by_lang.most_common()),
        }
