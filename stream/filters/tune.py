"""``codekiln-stream tune``: see what a rule's threshold keeps and drops, with a quality proxy.

Given a JSONL corpus (``text`` plus optional ``lang``, ``path``, ``meta.lang_type``) and a rule,
the command routes every record to its rule table like the filter stage does, computes the
rule's signal, and for each candidate threshold prints how many records are retained and
filtered and the mean *perplexity* of each group.

Quality proxy: per-token perplexity under a word bigram model with add-one smoothed unigram
back-off (interpolation weight 0.7 on the bigram) trained on the corpus itself. To avoid
scoring a document with a model that saw it, the corpus is split in two halves by a hash of the
text; each half is scored by the model of the other half. Documents that look like the bulk of
the corpus get low perplexity; boilerplate, encoded blobs and gibberish get high perplexity.
A threshold that moves many high-perplexity documents into "filtered" while leaving the
retained mean low is doing useful work; one that filters documents whose perplexity matches the
retained ones is mostly removing ordinary data. Perplexity is a proxy, not a verdict: generated
tables or repeated lines have *low* perplexity under a corpus model, so read it together with
the counts and samples (``--show``).

Candidate thresholds: the rule's configured threshold, the signal's 5/10/25/50/75/90/95th
percentiles, and any given with ``--thresholds``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codekiln.stream.filters.document import Document
from codekiln.stream.filters.heuristic import HeuristicFilterStage
from codekiln.stream.filters.rules import Rule, RuleConfigError
from codekiln.stream.filters.signals import SIGNALS, Unparseable
from codekiln.stream.record import Record
from codekiln.stream.subcommand import standalone_main

from codekiln.cli_common import InputNotFound, input_not_found
from codekiln.progress import track
from codekiln.shards import BadLine, ShardError, iter_objects

_TOKEN = re.compile(r"\w+|[^\w\s]")
BIGRAM_WEIGHT = 0.7
MAX_TOKENS_PER_DOC = 5000


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text[: MAX_TOKENS_PER_DOC * 8].lower())[:MAX_TOKENS_PER_DOC]


class BigramModel:
    """Interpolated word bigram / add-one unigram model (the perplexity proxy)."""

    def __init__(self) -> None:
        self.unigrams: Counter[str] = Counter()
        self.bigrams: Counter[tuple[str, str]] = Counter()
        self.total = 0

    def add(self, tokens: list[str]) -> None:
        self.unigrams.update(tokens)
        self.bigrams.update(itertools.pairwise(tokens))
        self.total += len(tokens)

    def perplexity(self, tokens: list[str]) -> float:
        if len(tokens) < 2:
            return float("nan")
        vocab = len(self.unigrams) + 1
        log_sum = 0.0
        for prev, word in itertools.pairwise(tokens):
            p_uni = (self.unigrams[word] + 1) / (self.total + vocab)
            prev_count = self.unigrams[prev]
            p_bi = self.bigrams[(prev, word)] / prev_count if prev_count else 0.0
            log_sum += math.log(BIGRAM_WEIGHT * p_bi + (1 - BIGRAM_WEIGHT) * p_uni)
        return math.exp(-log_sum / (len(tokens) - 1))


@dataclass(slots=True)
class Scored:
    text: str
    value: float | None
    table: str
    perplexity: float
    other_rule: str | None


def _fold(text: str) -> int:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=1).digest()[0] & 1


def read_corpus(path: Path, limit: int | None) -> Iterator[Record]:
    """Records of a corpus file or folder in any shard format a run writes (see codekiln.shards).

    ``limit`` caps the lines read per shard. A line that is not an object with a string
    ``text`` is skipped with a note on stderr.
    """
    for shard, number, obj in iter_objects(path, limit=limit):
        if isinstance(obj, BadLine):
            print(f"tune: {shard}:{obj.number}: skipped ({obj.reason})", file=sys.stderr)
            continue
        text = obj.get("text")
        if not isinstance(text, str):
            print(f"tune: {shard}: skipped a record without a string text", file=sys.stderr)
            continue
        meta = obj.get("meta")
        yield Record(
            id=str(obj.get("id", number)),
            text=text,
            lang=str(obj.get("lang") or ""),
            path=str(obj.get("path") or ""),
            meta=dict(meta) if isinstance(meta, dict) else {},
        )


def _find_rule(stage: HeuristicFilterStage, name: str, table: str | None) -> dict[str, Rule]:
    """The rule per table (only tables that have it, or the one asked for)."""
    found = {}
    for tname, tbl in stage.ruleset.tables.items():
        if table is not None and tname != table:
            continue
        for rule in tbl.rules:
            if rule.name == name:
                found[tname] = rule
    if not found:
        where = f"table {table!r}" if table else "any table"
        raise RuleConfigError(f"no rule {name!r} in {where}")
    return found


def score_corpus(
    records: Iterable[Record], rule_name: str, table: str | None = None
) -> tuple[list[Scored], dict[str, Rule]]:
    stage = HeuristicFilterStage()
    rules = _find_rule(stage, rule_name, table)
    others = HeuristicFilterStage(disable=[rule_name])
    docs = list(records)
    models = (BigramModel(), BigramModel())
    tokens = [_tokens(r.text) for r in track(docs, description="tune: tokenizing", unit="docs")]
    for record, toks in zip(docs, tokens, strict=True):
        models[_fold(record.text)].add(toks)
    out: list[Scored] = []
    scoring = zip(docs, tokens, strict=True)
    for record, toks in track(scoring, description="tune: scoring", total=len(docs), unit="docs"):
        routed = stage.route(record)
        rule = rules.get(routed.name)
        if rule is None:
            continue
        doc = Document(record.text, record.lang, record.path, routed.name)
        try:
            value: float | None = SIGNALS[rule.signal].fn(doc)
        except Unparseable:
            value = None
        other = others.evaluate(Record(id=record.id, text=record.text, lang=record.lang,
                                       path=record.path, meta=dict(record.meta)))[0]  # fmt: skip
        model = models[1 - _fold(record.text)]
        if model.total == 0:
            model = models[_fold(record.text)]
        out.append(Scored(record.text, value, routed.name, model.perplexity(toks), other))
    return out, rules


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sweep(scored: list[Scored], rule: Rule, extra: list[float]) -> list[dict[str, Any]]:
    """Rows of (threshold, retained, filtered, perplexities, overlap with other rules)."""
    values = [s.value for s in scored if s.value is not None]
    candidates = {rule.gt if rule.gt is not None else rule.lt}
    if values:
        candidates |= {_percentile(values, q) for q in (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)}
    candidates |= set(extra)
    direction = "gt" if rule.gt is not None else "lt"
    rows: list[dict[str, Any]] = []
    for threshold in sorted(c for c in candidates if c is not None):
        kept: list[Scored] = []
        dropped: list[Scored] = []
        for s in scored:
            if s.value is None:
                continue
            fires = s.value > threshold if direction == "gt" else s.value < threshold
            (dropped if fires else kept).append(s)
        rows.append(
            {
                "threshold": threshold,
                "configured": threshold == (rule.gt if direction == "gt" else rule.lt),
                "retained": len(kept),
                "filtered": len(dropped),
                "ppl_retained": _mean([s.perplexity for s in kept]),
                "ppl_filtered": _mean([s.perplexity for s in dropped]),
                "filtered_also_by_other_rules": sum(1 for s in dropped if s.other_rule),
            }
        )
    return rows


def cmd_tune(args: argparse.Namespace) -> int:
    if args.list_signals:
        for name, sig in sorted(SIGNALS.items()):
            if not name.startswith("test_"):
                print(f"{name:36s} {sig.doc.splitlines()[0] if sig.doc else ''}")
        return 0
    if not args.corpus or not args.rule:
        print("codekiln-stream tune: error: give CORPUS and --rule (or --list-signals)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        extra = [float(x) for x in args.thresholds.split(",")] if args.thresholds else []
        scored, rules = score_corpus(read_corpus(Path(args.corpus), args.limit), args.rule,
                                     args.table)  # fmt: skip
    except InputNotFound as exc:
        return input_not_found("codekiln-stream tune", exc)
    except (RuleConfigError, ValueError) as exc:
        print(f"codekiln-stream tune: error: {exc}", file=sys.stderr)
        return 2
    except (ShardError, OSError) as exc:
        print(f"codekiln-stream tune: error: {_os_message(exc)}", file=sys.stderr)
        return 1
    if not scored:
        # Nothing to tune on is a failure, never an empty table and exit 0.
        print(
            f"codekiln-stream tune: error: no record of {args.corpus} reached a rule table "
            f"with {args.rule!r} (tables with it: {', '.join(sorted(rules))}; "
            f"records read: {_count_read(args)}); records are routed by their lang "
            "(and meta.lang_type), so give them one, e.g. a corpus written by "
            "`codekiln-stream run`",
            file=sys.stderr,
        )
        return 1
    results = {}
    # --json alone: the JSON on stdout is the whole output (a pipe gets one document).
    say: Any = print if args.json != "-" else (lambda *_a, **_k: None)
    for table, rule in rules.items():
        subset = [s for s in scored if s.table == table]
        if not subset:
            continue
        unparseable = sum(1 for s in subset if s.value is None)
        say(f"\nrule {rule.name} in table {table}: drop if {rule.describe()}  "
              f"({len(subset)} records, {unparseable} unparseable)")  # fmt: skip
        say(f"{'threshold':>12} {'retained':>9} {'filtered':>9} {'ppl kept':>10} "
              f"{'ppl filt':>10} {'also other':>10}")  # fmt: skip
        rows = sweep(subset, rule, extra)
        for row in rows:
            mark = " <- configured" if row["configured"] else ""
            say(
                f"{row['threshold']:>12.4g} {row['retained']:>9} {row['filtered']:>9} "
                f"{row['ppl_retained']:>10.1f} {row['ppl_filtered']:>10.1f} "
                f"{row['filtered_also_by_other_rules']:>10}{mark}"
            )
        if args.show:
            configured = rule.gt if rule.gt is not None else rule.lt
            direction = "gt" if rule.gt is not None else "lt"
            fired = [
                s
                for s in subset
                if s.value is not None
                and (s.value > configured if direction == "gt" else s.value < configured)  # type: ignore[operator]
            ]
            for s in fired[: args.show]:
                head = s.text[:160].replace("\n", "\\n")
                say(f"  filtered  value={s.value:.4g} ppl={s.perplexity:.1f}: {head}")
        results[table] = rows
    if args.json == "-":
        print(json.dumps(results, indent=1))
    elif args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def _os_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc)


def _count_read(args: argparse.Namespace) -> int:
    return sum(1 for _ in read_corpus(Path(args.corpus), args.limit))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="threshold tuning: retained vs filtered counts and perplexity for one rule",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("corpus", nargs="?", help="JSONL with text (lang, path, meta optional)")
    parser.add_argument("--rule", help="rule name, e.g. py_frac_lines_print")
    parser.add_argument("--table", help="only this rule table (default: every table with it)")
    parser.add_argument("--thresholds", help="extra candidate thresholds, comma-separated")
    parser.add_argument("--limit", type=int, help="read at most this many lines")
    parser.add_argument("--show", type=int, default=0, help="print N filtered samples")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="the table as JSON: alone, on stdout instead of the text table; with FILE, "
        "written there as well",
    )
    parser.add_argument("--list-signals", action="store_true", help="list signals and exit")
    parser.set_defaults(func=cmd_tune)
    # The annealing mixture command lives in codekiln.stream.sampling.cli; the runtime CLI
    # loads subcommands from this module, so register it here too unless already present.
    from codekiln.stream.sampling.cli import register as register_mix

    if "anneal-mix" not in getattr(subparsers, "choices", {}):
        register_mix(subparsers)


def main(argv: list[str] | None = None) -> int:
    return standalone_main(register, argv)


if __name__ == "__main__":
    sys.exit(main())
