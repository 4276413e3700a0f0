"""The heuristic filter stage: OpenCoder's three groups of rules, per language, from data.

A record is routed to a rule table by its language (``record.lang``, the Linguist name stage 1
sets) or, for languages without a table of their own, by ``meta["lang_type"]``. The table's
enabled rules run in order; the first rule that fires drops the record with the reason
``filters:<rule>`` and a readable ``meta["filter_detail"]`` (value and threshold). A signal that
raises or runs past its time budget is counted in the report and only its own rule is skipped.
A parser that rejects the file (syntax, nesting depth, size, time) drops it as
``filters:unparseable``. A document whose signals together run past ``doc_budget_s`` is dropped
as ``filters:timeout`` (a pathological input, never a hang). The parse-failure rules of
Python, JavaScript and HTML run before the others.

The stage is pure (``cpu_bound``): the runtime runs its batches in the process pool, where each
worker holds its own copy. Each copy counts what its batches did and hands the counts back with
every batch (:meth:`HeuristicFilterStage.take_stats`); the copy in the runtime process adds them
up in input order and checkpoints the sums, so the report's per-language and per-rule figures
are exact across a ``kill -9`` and resume (batches re-run after the last checkpoint are counted
once).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from codekiln.stream.filters.budget import (
    DEADLINE,
    SignalTimeout,
    alarm_handler,
    tick_for,
)
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.rules import Rule, RuleSet, RuleTable, load_rules
from codekiln.stream.filters.signals import SIGNALS, Unparseable
from codekiln.stream.filters.signals.registry import SignalFn
from codekiln.stream.record import Record
from codekiln.stream.stage import BatchStage

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ZH_SAMPLE_CHARS = 10_000
UNPARSEABLE = "unparseable"
TIMEOUT = "timeout"


#: Parse-failure signals cheap enough to run before every other rule (each parses at several
#: MB/s; tree-sitter-javascript ~10 MB/s on npm's sources, see bench/bench_js_parse.py).
CHEAP_PARSE_SIGNALS = frozenset({"py_unparseable", "js_unparseable", "html_unparseable"})


def _parse_first(rule: Rule) -> bool:
    return rule.name == UNPARSEABLE and rule.signal in CHEAP_PARSE_SIGNALS


def rule_draw(digest: bytes, rule: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (document, rule, seed): the probabilistic coin."""
    h = hashlib.blake2b(digest, digest_size=8, key=f"{seed}:{rule}".encode()[:64])
    return int.from_bytes(h.digest(), "big") / 2.0**64


class HeuristicFilterStage(BatchStage):
    """Drop records that any active rule of their language's table fires on."""

    name: ClassVar[str] = "filters"
    cpu_bound: ClassVar[bool] = True

    def __init__(
        self,
        *,
        rules: str | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        disable: list[str] | tuple[str, ...] = (),
        reproduce: str | list[str] | tuple[str, ...] = (),
        signal_budget_s: float = 2.0,
        doc_budget_s: float = 10.0,
        seed: int = 0,
        evaluate_all: bool = False,
        annotate: bool = False,
    ) -> None:
        if signal_budget_s <= 0 or doc_budget_s <= 0:
            raise ValueError("signal_budget_s and doc_budget_s must be positive")
        self.ruleset: RuleSet = load_rules(rules, overrides, tuple(disable), reproduce)
        self.signal_budget_s = float(signal_budget_s)
        self.doc_budget_s = float(doc_budget_s)
        self.seed = int(seed)
        #: Compute every signal of the table even after a rule fired (for tuning, benchmarks).
        self.evaluate_all = bool(evaluate_all)
        #: Store the computed signal values in ``meta["quality_signals"]``.
        self.annotate = bool(annotate)
        # A cheap parse-failure rule runs first: it is the most telling reason for a file the
        # parser rejects, and the language rules depend on that parse anyway. Order decides
        # which rule a dropped file is charged to and what it costs, not whether it is dropped
        # (each rule's coin is drawn from document, rule and seed), unless doc_budget_s runs
        # out first. A parse rule not in CHEAP_PARSE_SIGNALS keeps its table position.
        self._active: dict[str, tuple[Rule, ...]] = {
            name: tuple(sorted(table.active, key=lambda rule: not _parse_first(rule)))
            for name, table in self.ruleset.tables.items()
        }
        # (rule, signal name, signal function) per table, resolved once.
        self._plans: dict[str, tuple[tuple[Rule, str, SignalFn], ...]] = {
            name: tuple((rule, rule.signal, SIGNALS[rule.signal].fn) for rule in rules)
            for name, rules in self._active.items()
        }
        self._work_dir: Path | None = None
        #: Counts handed back by pool workers (and restored from a checkpoint).
        self._absorbed: dict[str, Any] = {}
        self._reset_counters()

    def __getstate__(self) -> dict[str, Any]:
        # The plans hold signal functions, some of them closures (the C-family signals), which
        # do not pickle; the pool's workers rebuild them from the registry.
        return {k: v for k, v in self.__dict__.items() if k != "_plans"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._plans = {
            name: tuple((rule, rule.signal, SIGNALS[rule.signal].fn) for rule in rules)
            for name, rules in self._active.items()
        }

    def open(self, work_dir: Path) -> None:
        self._work_dir = Path(work_dir)

    def _reset_counters(self) -> None:
        self.docs_in: Counter[str] = Counter()
        self.docs_dropped: Counter[str] = Counter()
        self.bytes_in: Counter[str] = Counter()
        self.bytes_kept: Counter[str] = Counter()
        self.by_table: Counter[str] = Counter()
        self.drops_by_rule: Counter[str] = Counter()
        self.drops_by_lang_rule: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.signal_failures: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.signal_timeouts: Counter[str] = Counter()
        self.signal_slow: Counter[str] = Counter()
        self.unparseable: Counter[str] = Counter()

    # ---- routing ------------------------------------------------------------------------
    def route(self, record: Record) -> RuleTable:
        routing = self.ruleset.routing
        name = routing.languages.get(record.lang)
        if name is None:
            lang_type = str(record.meta.get("lang_type", ""))
            name = routing.lang_types.get(lang_type, routing.default)
        if name == routing.lang_types.get("prose"):
            sample = record.text[:_ZH_SAMPLE_CHARS]
            if sample and len(_CJK.findall(sample)) > routing.zh_min_cjk_fraction * len(sample):
                name = routing.text_zh
        return self.ruleset.tables[name]

    # ---- evaluation ---------------------------------------------------------------------
    def evaluate(
        self, record: Record, armed: bool = False
    ) -> tuple[str | None, str, dict[str, float]]:
        """(rule that fired or None, detail, signal values) for one record."""
        table = self.route(record)
        self.by_table[table.name] += 1
        doc = Document(record.text, record.lang, record.path, table.name)
        values: dict[str, float] = {}
        failed: set[str] = set()
        fired: str | None = None
        detail = ""
        budget = self.signal_budget_s
        deadline_cell = DEADLINE
        now = time.perf_counter()
        deadline = now + self.doc_budget_s
        for rule, sig, fn in self._plans[table.name]:
            if now > deadline:
                return TIMEOUT, f"signals ran past doc_budget_s={self.doc_budget_s:g}", values
            if sig in failed:
                continue
            value = values.get(sig)
            if value is None:
                # The signal's deadline in budget's cell: one clock read per signal, shared
                # with the document deadline check of the next rule.
                try:
                    if armed:
                        deadline_cell[0] = now + budget
                        try:
                            value = fn(doc)
                        finally:
                            deadline_cell[0] = 0.0
                    else:
                        value = fn(doc)
                except Unparseable as exc:
                    failed.add(sig)
                    self.unparseable[exc.parser] += 1
                    if rule.name == UNPARSEABLE:
                        return UNPARSEABLE, str(exc)[:300], values
                    now = time.perf_counter()
                    continue
                except SignalTimeout:
                    failed.add(sig)
                    self.signal_timeouts[sig] += 1
                    if rule.name == UNPARSEABLE:
                        return UNPARSEABLE, f"parser ran past {budget:g}s", values
                    now = time.perf_counter()
                    continue
                except RecursionError:
                    failed.add(sig)
                    self.signal_failures[sig]["RecursionError"] += 1
                    if rule.name == UNPARSEABLE:
                        return UNPARSEABLE, "RecursionError", values
                    now = time.perf_counter()
                    continue
                except Exception as exc:  # one failing signal is counted, not fatal
                    failed.add(sig)
                    self.signal_failures[sig][type(exc).__name__] += 1
                    now = time.perf_counter()
                    continue
                start, now = now, time.perf_counter()
                if now - start > budget:
                    self.signal_slow[sig] += 1
                values[sig] = value
            if (
                fired is None
                and rule.fires_on(value)
                and (rule.p >= 1.0 or rule_draw(doc.digest, rule.name, self.seed) < rule.p)
            ):
                fired = rule.name
                detail = f"{sig}={value:.4g}; drop if {rule.describe()}"
                if not self.evaluate_all:
                    break
        return fired, detail, values

    def process_batch(self, batch: list[Record]) -> list[Record]:
        with alarm_handler(tick_for(self.signal_budget_s)) as armed:
            for record in batch:
                if record.drop_reason is not None:
                    continue
                try:
                    fired, detail, values = self.evaluate(record, armed)
                except Exception as exc:  # quarantine, the run goes on
                    self._quarantine(record, exc)
                    continue
                lang = record.lang or "unknown"
                size = len(record.text)
                self.docs_in[lang] += 1
                self.bytes_in[lang] += size
                if self.annotate:
                    record.meta["quality_signals"] = {k: round(v, 6) for k, v in values.items()}
                if fired is None:
                    self.bytes_kept[lang] += size
                    continue
                record.drop_reason = f"{self.name}:{fired}"
                record.meta["filter_detail"] = detail
                self.docs_dropped[lang] += 1
                self.drops_by_rule[fired] += 1
                self.drops_by_lang_rule[lang][fired] += 1
        return batch

    # ---- counters across processes and checkpoints ----------------------------------------
    def take_stats(self) -> dict[str, Any] | None:
        """This copy's counts since the last call (a pool worker's, after each batch)."""
        if not self.docs_in and not self.by_table:
            return None
        stats = self._local_report()
        self._reset_counters()
        return stats

    def absorb_stats(self, stats: dict[str, Any]) -> None:
        self._absorbed = merge_reports([self._absorbed, stats])

    def state_dict(self) -> dict[str, Any]:
        return {"counts": self.report()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset_counters()
        self._absorbed = dict(state.get("counts", {}))

    # ---- report -------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """Counters of every copy of this stage: the absorbed ones plus this copy's own."""
        local = self._local_report()
        if not self._absorbed:
            return local
        merged = merge_reports([self._absorbed, local])
        # Sums of per-rule counts lose the most-common-first order: restore it.
        merged["drops_by_rule"] = dict(Counter(merged.get("drops_by_rule", {})).most_common())
        for figures in merged.get("by_language", {}).values():
            rules = figures.get("drops_by_rule", {})
            figures["drops_by_rule"] = dict(Counter(rules).most_common())
        merged["by_language"] = dict(sorted(merged.get("by_language", {}).items()))
        return merged

    def _local_report(self) -> dict[str, Any]:
        docs_in = sum(self.docs_in.values())
        dropped = sum(self.docs_dropped.values())
        return {
            "docs_in": docs_in,
            "docs_kept": docs_in - dropped,
            "docs_dropped": dropped,
            "drops_by_rule": dict(self.drops_by_rule.most_common()),
            "by_language": {
                lang: {
                    "in": self.docs_in[lang],
                    "dropped": self.docs_dropped[lang],
                    "chars_in": self.bytes_in[lang],
                    "chars_kept": self.bytes_kept[lang],
                    "drops_by_rule": dict(self.drops_by_lang_rule[lang].most_common()),
                }
                for lang in sorted(self.docs_in)
            },
            "by_table": dict(self.by_table),
            "signal_failures": {k: dict(v) for k, v in self.signal_failures.items()},
            "signal_timeouts": dict(self.signal_timeouts),
            "signal_slow": dict(self.signal_slow),
            "unparseable_by_parser": dict(self.unparseable),
        }


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum several :meth:`HeuristicFilterStage.report` results (one per worker) into one."""

    def add(into: dict[str, Any], part: Mapping[str, Any]) -> None:
        for key, value in part.items():
            if isinstance(value, Mapping):
                add(into.setdefault(key, {}), value)
            elif isinstance(value, int | float):
                into[key] = into.get(key, 0) + value

    merged: dict[str, Any] = {}
    for report in reports:
        add(merged, report)
    return merged
