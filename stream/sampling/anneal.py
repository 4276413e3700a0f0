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
On ASCII texts, keywords and the default patterns then run in an equivalent form
(:data:`LOWERED_PATTERNS`) on that lower-cased text, without ``re.I`` and starting with a
literal character, which lets the regular-expression engine skip to candidate positions (a
leading ``\b`` or ``re.I`` makes it try every position, ~20x slower). Other texts run the
patterns as written: ``str.lower()`` and case-insensitive matching part ways on a few
characters (the dotted capital I becomes two characters, the long s folds to ``s``, a final
sigma lower-cases by context).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from codekiln.stream.native_loader import native as _native
from codekiln.stream.record import Record
from codekiln.stream.stage import SHARD, BatchStage, Scope

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


#: The default patterns for the lower-cased text: lower-case, no ``re.I``, a literal first
#: character; a leading ``\b`` becomes a look-behind after that character (``d(?<!\wd)``: the
#: character before the ``d`` is not a word character).
LOWERED_PATTERNS: dict[str, str] = {
    "def_solution": r"d(?<!\wd)ef\s+solution\s*\(",
    "class_solution": r"c(?<!\wc)lass\s+solution\b",
    "sample_io": r"s(?<!\ws)ample\s+input\b[\s\S]{0,2000}?\bsample\s+output\b",
    # ``^\s*(?:#|//|\*)?\s*constraints\s*:`` (re.M): the key word first, the line start
    # checked behind it by :func:`_constraints_line`.
    "problem_constraints": r"constraints\s*:",
    "time_complexity": r"t(?<!\wt)ime\s+complexity\s*:?\s*o\(",
}
_LINE_HEAD = re.compile(r"\s*(?:#|//|\*)?\s*")


def _keyword_lowered(word: str) -> str:
    r"""``(?<![\w-])word(?![\w-])`` for lower-cased text, starting with a literal."""
    lowered = word.lower()
    first = re.escape(lowered[0])
    return rf"{first}(?<![\w-]{first}){re.escape(lowered[1:])}(?![\w-])"


def _constraints_match(pattern: re.Pattern[str], lowered: str) -> bool:
    r"""Whether ``constraints\s*:`` occurs with only blanks and one comment marker before it
    on its line. Then some line start satisfies the original ``^\s*(?:#|//|\*)?\s*``; an
    earlier one never does when this one does not, since ``\s*`` would have to cover this
    line's head too. A line's head is matched once: a key word on it qualifies only where the
    head ends (the head holds no letter), so many key words on one long line stay linear.
    """
    scanned = 0
    head_end = -1
    for match in pattern.finditer(lowered):
        start = match.start()
        newline = lowered.rfind("\n", scanned, start)
        if newline != -1 or head_end < 0:
            line_start = newline + 1 if newline != -1 else 0
            head = _LINE_HEAD.match(lowered, line_start)
            head_end = head.end() if head else line_start
        scanned = start
        if start == head_end:
            return True
    return False


class AnnealConfigError(ValueError):
    """A pattern does not compile or an option is malformed."""


class AnnealRouteStage(BatchStage):
    """Tag (or divert) records that match the annealing patterns."""

    name: ClassVar[str] = "anneal_route"
    # Counters are checkpointed so the report stays exact across a resume.
    stateful: ClassVar[bool] = True

    def scope(self) -> Scope:
        return SHARD  # each record decided alone; the state is counters

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
        # Patterns that run on the lower-cased text (see the module docstring).
        lowered = dict(LOWERED_PATTERNS if patterns is None else {})
        for word in keywords:
            if not word:
                raise AnnealConfigError("anneal_route keywords must not be empty")
            named[f"kw:{word}"] = rf"(?<![\w-]){re.escape(word)}(?![\w-])"
            hints[f"kw:{word}"] = word.lower()
            lowered[f"kw:{word}"] = _keyword_lowered(word)
        if not named:
            raise AnnealConfigError("anneal_route needs at least one keyword or pattern")
        # (label, required lower-case substring or "", the pattern as written, its lower-case
        # form for ASCII texts or None)
        self._patterns: list[tuple[str, str, re.Pattern[str], re.Pattern[str] | None]] = []
        for label, pattern in named.items():
            try:
                compiled = re.compile(pattern, re.I | re.M)
                fast = re.compile(lowered[label]) if label in lowered else None
            except re.error as exc:
                raise AnnealConfigError(f"anneal_route pattern {label!r}: {exc}") from exc
            self._patterns.append((label, hints.get(label, ""), compiled, fast))
        hint_list = sorted({hint for _, hint, _, _ in self._patterns if hint})
        #: The hints for the C search (up to 64; more: searched one by one in Python).
        self._needles = tuple(h.encode() for h in hint_list) if len(hint_list) <= 64 else ()
        self._needle_bit = {hint: k for k, hint in enumerate(hint_list)}
        #: Every pattern has a hint: a text holding none of them matches nothing.
        self._all_hinted = all(hint for _, hint, _, _ in self._patterns)
        self.corpus = corpus
        self.exclusive = bool(exclusive)
        self.max_scan_chars = int(max_scan_chars)
        self.seen = 0
        self.matched: Counter[str] = Counter()
        self.matched_by_lang: Counter[str] = Counter()

    def match(self, text: str) -> str | None:
        """The label of the first pattern that matches ``text`` (scan capped), else None."""
        head = text[: self.max_scan_chars]
        ascii_text = head.isascii()
        found = -1  # every hint present, unless found by the C search below
        if ascii_text and _native is not None and self._needles:
            # All hints in one pass over the text, without lower-casing it first: most texts
            # have none, and then no lower-case copy is made at all.
            found = _native.find_needles(head, self._needles, len(head))
            if not found and self._all_hinted:
                return None
        lowered = head.lower()
        for label, hint, pattern, fast in self._patterns:
            if hint and (
                hint not in lowered if found == -1 else not found >> self._needle_bit[hint] & 1
            ):
                continue
            if fast is None or not ascii_text:
                if pattern.search(head):
                    return label
            elif label == "problem_constraints":
                if _constraints_match(fast, lowered):
                    return label
            elif fast.search(lowered):
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
