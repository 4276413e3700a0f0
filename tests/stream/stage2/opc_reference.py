"""Differential comparison of codekiln's filters with OpenCoder's own verdicts (the oracle).

``$CODEKILN_REFERENCE_DIR/opc-filtering/golden.jsonl.gz`` (default ``../shared/reference``
beside the repository) holds, for real files that Debian packages install, the verdict, fired
rules and every signal value of OpenCoder's reference filtering code (opc_data_filtering
@ 44b857e; its README says how they were produced). This module reads each file from its
Debian path (a file that is missing or whose SHA-256 differs is skipped and counted), runs
codekiln's signals and rule table for the file's language on it (probabilistic rules at drop
probability 1, as the golden verdicts were made) and lists every difference: a signal value,
a rule that fires on one side only, the keep/drop verdict. A difference is *covered* when a
row of the intentional-deviation table (``stream/filters/data/opc_deviations.yaml``) applies to
the file and names that signal or rule; a verdict difference is covered when every rule
difference of the file is.

Run it to see the agreement per language (kept/dropped, rules, signals)::

    .venv/bin/python -m tests.stream.stage2.opc_reference [--lang Python] [--diffs N]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codekiln.stream.filters import REPRODUCE_ALL, SIGNALS, HeuristicFilterStage, Unparseable
from codekiln.stream.filters.deviations import Deviation, load_deviations
from codekiln.stream.filters.document import Document
from codekiln.stream.preprocess import default_table
from codekiln.stream.record import Record

REPO = Path(__file__).resolve().parents[3]
REFERENCE_DIR = Path(os.environ.get("CODEKILN_REFERENCE_DIR", REPO.parent / "shared" / "reference"))
GOLDEN = REFERENCE_DIR / "opc-filtering" / "golden.jsonl.gz"
#: Upstream rounds its signal values to 8 decimals.
TOLERANCE = 2e-8

#: Upstream signal -> codekiln signal, for every upstream signal with a counterpart. Upstream's
#: ``*_cate_ast`` (1 = parsed) is the negation of codekiln's parse signal (raises when not).
_SHARED = [
    "frac_chars_replacement_symbols", "num_words", "num_chars", "mean_word_length",
    "frac_chars_top_2grams", "frac_chars_top_3grams", "frac_chars_top_4grams",
    *(f"frac_chars_dupe_{n}grams" for n in range(5, 11)),
    "frac_lines_dupe_lines", "size_file_byte", "num_lines", "num_chars_line_max",
    "num_chars_line_mean", "frac_chars_alphabet", "frac_chars_digital",
    "frac_chars_whitespace", "frac_chars_comments", "cate_xml_start", "cate_autogen",
    "frac_lines_long_string", "frac_chars_string_length", "frac_chars_long_word_length",
    "cate_encoded_data", "frac_chars_hex_words", "frac_lines_prompt_comments",
    "frac_lines_assert",
]  # fmt: skip
SIGNAL_MAP: dict[str, str] = {
    **{f"qsc_code_{name}": name for name in _SHARED},
    "qsc_code_frac_words_unique": "frac_unique_words",
    "qsc_codepython_cate_ast": "py_unparseable",
    "qsc_codepython_cate_var_zero": "py_cate_no_var",
    "qsc_codepython_frac_lines_func_ratio": "py_frac_lines_func",
    "qsc_codepython_frac_lines_import": "py_frac_lines_import",
    "qsc_codepython_frac_lines_pass": "py_frac_lines_pass",
    "qsc_codepython_frac_lines_print": "py_frac_lines_print",
    "qsc_codepython_frac_lines_simplefunc": "py_frac_lines_single_return_func",
    "qsc_codepython_score_lines_no_logic": "py_score_no_logic",
    "qsc_codejavascript_cate_ast": "js_unparseable",
    "qsc_codejavascript_cate_var_zero": "js_cate_no_var",
    "qsc_codejavascript_frac_lines_func_ratio": "js_frac_lines_func",
    "qsc_codejavascript_frac_lines_print": "js_frac_lines_print",
    "qsc_codejavascript_score_lines_no_logic": "js_score_no_logic",
    "qsc_codehtml_cate_ast": "html_unparseable",
    "qsc_codehtml_frac_words_text": "html_frac_chars_visible",
    "qsc_codehtml_num_chars_text": "html_num_chars_visible",
    "qsc_codego_cate_testfile": "go_cate_test_file",
    **{
        f"qsc_code{up}_{name}": f"{ck}_{mine}"
        for up, ck in (("c", "c"), ("cpp", "cpp"), ("csharp", "cs"), ("go", "go"), ("java", "java"))
        for name, mine in (
            ("frac_lines_func_ratio", "frac_lines_func"),
            ("cate_var_zero", "cate_no_var"),
            ("score_lines_no_logic", "score_no_logic"),
            ("frac_lines_print", "frac_lines_print"),
        )
    },
    **{
        f"qsc_code{up}_{name}": f"c_{mine}"
        for up in ("c", "cpp")
        for name, mine in (
            ("nums_lines_main", "num_main"),
            ("frac_lines_preprocessor_directives", "frac_lines_preprocessor"),
            ("frac_lines_goto", "frac_lines_goto"),
        )
    },
    # text documents (upstream's "en" and "zh" configurations)
    **{
        f"qsc_doc_{name}": name
        for name in (
            "frac_chars_replacement_symbols", "entropy_unigram", "frac_chars_top_2grams",
            "frac_chars_top_3grams", "frac_chars_top_4grams",
            *(f"frac_chars_dupe_{n}grams" for n in range(5, 11)),
            "frac_words_all_caps", "mean_word_length", "num_chars", "num_lines",
            "num_sentences", "num_words", "frac_chars_hex_words", "frac_chars_alphabet",
            "frac_chars_digital", "frac_chars_whitespace", "frac_lines_start_with_bullet",
        )
    },
    "qsc_doc_frac_chars_dupe_lines": "frac_chars_dupe_text_lines",
    "qsc_doc_frac_lines_dupe_lines": "frac_lines_dupe_text_lines",
    "qsc_doc_frac_lines_end_with_readmore": "frac_lines_end_with_ellipsis",
    "qsc_doc_frac_chars_hyperlink_html_tag": "frac_chars_url_html",
    "qsc_doc_frac_words_full_bracket": "frac_chars_full_bracket",
}  # fmt: skip
#: Signals whose codekiln value is "parsed" (1.0) unless the parser raises (0.0).
_PARSE_SIGNALS = {k for k, v in SIGNAL_MAP.items() if v.endswith("_unparseable")}
#: Upstream signals that no codekiln signal computes (reported, never compared).
UNMAPPED_NOTE = "upstream signals without a codekiln counterpart are not compared"


@dataclass
class FileResult:
    path: str
    tag: str
    upstream_unparsed: bool
    upstream_kept: bool
    codekiln_kept: bool
    #: (upstream signal, upstream value, codekiln value) that differ.
    signal_diffs: list[tuple[str, Any, Any]] = field(default_factory=list)
    #: (upstream rule, fired upstream, fired in codekiln) that differ.
    rule_diffs: list[tuple[str, bool, bool]] = field(default_factory=list)
    compared_signals: int = 0
    uncovered_signals: list[tuple[str, Any, Any]] = field(default_factory=list)
    uncovered_rules: list[tuple[str, bool, bool]] = field(default_factory=list)
    #: Row ids that covered at least one difference here.
    used_rows: set[str] = field(default_factory=set)
    #: The rows that cover a difference in fired rules (what a differing verdict is charged to).
    rule_rows: set[str] = field(default_factory=set)

    @property
    def verdict_agrees(self) -> bool:
        return self.upstream_kept == self.codekiln_kept

    @property
    def verdict_covered(self) -> bool:
        return self.verdict_agrees or not self.uncovered_rules


@dataclass
class Golden:
    rows: list[dict[str, Any]]
    texts: dict[str, str]
    skipped: dict[str, str]


def load_golden(path: Path = GOLDEN) -> Golden:
    """The golden rows and the text of each file whose bytes are those the reference saw."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    texts: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for row in rows:
        file = Path(row["path"])
        try:
            data = file.read_bytes()
        except OSError as exc:
            skipped[row["path"]] = f"missing ({exc.strerror})"
            continue
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            skipped[row["path"]] = "sha256 differs"
            continue
        texts[row["path"]] = data.decode("utf-8", "replace")
    return Golden(rows, texts, skipped)


_STAGES: dict[tuple[str, ...], HeuristicFilterStage] = {}


def _stage(reproduce: tuple[str, ...] = ()) -> HeuristicFilterStage:
    """The filter stage with the default tables, or with the rule changes of the deviation
    rows ``reproduce`` names (the stage's ``reproduce`` option)."""
    if reproduce not in _STAGES:
        _STAGES[reproduce] = HeuristicFilterStage(
            reproduce=REPRODUCE_ALL if reproduce == (REPRODUCE_ALL,) else reproduce
        )
    return _STAGES[reproduce]


def reproduced_rows(
    rows: tuple[Deviation, ...], reproduce: tuple[str, ...]
) -> tuple[Deviation, ...]:
    """The deviation table as it stands once ``reproduce``'s rows gave upstream's behaviour
    back: such a row covers no rule difference any more, nor a value of a signal its rule
    changes swapped (those must now equal upstream's); it still covers the values of a rule it
    only turned off (upstream computes the signal but never fires the rule)."""
    if not reproduce:
        return rows
    every = reproduce == (REPRODUCE_ALL,)
    out = []
    for row in rows:
        if not row.reproduce or not (every or row.id in reproduce):
            out.append(row)
            continue
        swapped = {
            upstream
            for _, rule, fields in row.reproduce
            if "signal" in dict(fields)
            for upstream, name in SIGNAL_MAP.items()
            if name == rule
        }
        signals = frozenset(p for p in row.signals if p not in swapped)
        if signals:
            out.append(replace(row, signals=signals, rules=frozenset()))
    return tuple(out)


def _value(doc: Document, upstream: str, name: str) -> float | None:
    fn = SIGNALS[name].fn
    if upstream in _PARSE_SIGNALS:
        try:
            fn(doc)
        except Unparseable:
            return 0.0
        return 1.0
    try:
        return fn(doc)
    except Unparseable:
        return None


def _same(upstream: Any, mine: float | None) -> bool:
    if upstream is None or mine is None:
        return upstream is None and mine is None
    return math.isclose(float(upstream), mine, rel_tol=0.0, abs_tol=TOLERANCE)


def codekiln_signals(
    row: dict[str, Any], text: str, reproduce: tuple[str, ...] = ()
) -> tuple[dict[str, float | None], set[str]]:
    """(upstream signal name -> codekiln's value, upstream names of the rules that fire); a
    rule that ``reproduce`` pointed at another signal gives that signal's value."""
    stage = _stage(reproduce)
    record = Record(id=row["path"], text=text, lang=row["tag"], path=row["path"])
    language = default_table().by_name(row["tag"])
    if language is not None:  # as stage 1 sets it: data and prose have their own tables
        record.meta["lang_type"] = language.type
    table = stage.route(record)
    doc = Document(text, row["tag"], row["path"], table.name)
    swapped = {r.name: r.signal for r in table.rules if r.name in SIGNALS and r.signal != r.name}
    by_signal: dict[str, float | None] = {}
    values: dict[str, float | None] = {}
    for upstream, default in SIGNAL_MAP.items():
        name = swapped.get(default, default)
        if upstream in row["signals"] or any(r.signal == name for r in table.active):
            if name not in by_signal:
                by_signal[name] = _value(doc, upstream, name)
            values[upstream] = by_signal[name]
    reverse: dict[str, list[str]] = defaultdict(list)
    for upstream, name in SIGNAL_MAP.items():
        reverse[swapped.get(name, name)].append(upstream)
    fired: set[str] = set()
    for rule in table.active:
        if rule.signal not in by_signal:
            by_signal[rule.signal] = _value(doc, "", rule.signal)
        value = by_signal[rule.signal]
        if rule.signal.endswith("_unparseable"):
            hit = value is None
        else:
            hit = value is not None and rule.fires_on(value)  # p treated as 1
        if hit:
            names = [u for u in reverse.get(rule.signal, []) if u in row["signals"]]
            fired.update(names or [f"codekiln:{rule.name}"])
    return values, fired


def compare(
    row: dict[str, Any],
    text: str,
    deviations: tuple[Deviation, ...],
    reproduce: tuple[str, ...] = (),
) -> FileResult:
    signals = row["signals"]
    unparsed = any(k.endswith("_cate_ast") and v == 0 for k, v in signals.items())
    values, fired = codekiln_signals(row, text, reproduce)
    result = FileResult(row["path"], row["tag"], unparsed, bool(row["kept"]), not fired)
    applying = [d for d in deviations if d.applies(row["path"], row["tag"], unparsed)]
    for upstream, mine in values.items():
        if upstream not in signals:
            continue
        want = signals[upstream]
        if want is None:  # upstream did not compute it (its parser failed): nothing to compare
            continue
        result.compared_signals += 1
        if _same(want, mine):
            continue
        diff = (upstream, want, mine)
        result.signal_diffs.append(diff)
        size = None if mine is None else abs(float(want) - mine)
        rows = [d.id for d in applying if d.covers_signal(upstream, size)]
        if rows:
            result.used_rows.update(rows)
        else:
            result.uncovered_signals.append(diff)
    upstream_hits = set(row["hits"])
    for rule in sorted(upstream_hits ^ fired):
        rdiff = (rule, rule in upstream_hits, rule in fired)
        result.rule_diffs.append(rdiff)
        rows = [d.id for d in applying if d.covers_rule(rule)]
        if rows:
            result.used_rows.update(rows)
            result.rule_rows.update(rows)
        else:
            result.uncovered_rules.append(rdiff)
    return result


def run(
    golden: Golden,
    deviations: tuple[Deviation, ...] | None = None,
    reproduce: tuple[str, ...] = (),
) -> list[FileResult]:
    """Compare every golden file; with ``reproduce`` (row ids, or ``("all",)``) the filter
    stage gives those rows' upstream behaviour back and the rows cover what is left
    (:func:`reproduced_rows`)."""
    table = load_deviations() if deviations is None else deviations
    table = reproduced_rows(table, reproduce)
    return [
        compare(row, golden.texts[row["path"]], table, reproduce)
        for row in golden.rows
        if row["path"] in golden.texts
    ]


def agreement(results: list[FileResult]) -> dict[str, dict[str, Any]]:
    """Per language (and "all"): files, verdict/rule/signal agreement, with and without the
    files upstream's own parser rejected."""
    groups: dict[str, list[FileResult]] = defaultdict(list)
    for res in results:
        groups[res.tag].append(res)
        groups["all"].append(res)
    out: dict[str, dict[str, Any]] = {}
    for tag in sorted(groups, key=lambda t: (t == "all", t)):
        items = groups[tag]
        parsed = [r for r in items if not r.upstream_unparsed]
        compared = sum(r.compared_signals for r in parsed)
        out[tag] = {
            "files": len(items),
            "verdict": sum(r.verdict_agrees for r in items) / len(items),
            "verdict_parsed": sum(r.verdict_agrees for r in parsed) / max(1, len(parsed)),
            "kept_up": sum(r.upstream_kept for r in items),
            "kept_ck": sum(r.codekiln_kept for r in items),
            "rules": sum(not r.rule_diffs for r in parsed) / max(1, len(parsed)),
            "signals": 1 - sum(len(r.signal_diffs) for r in parsed) / max(1, compared),
            "uncovered": sum(bool(r.uncovered_rules or r.uncovered_signals) for r in items),
        }
    return out


def format_agreement(stats: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'language':<11} {'files':>5} {'verdict':>8} {'parsed':>7} {'kept up/ck':>11} "
        f"{'rules':>6} {'signals':>8} {'uncovered':>9}"
    ]
    for tag, s in stats.items():
        lines.append(
            f"{tag:<11} {s['files']:>5} {s['verdict']:>8.1%} {s['verdict_parsed']:>7.1%} "
            f"{s['kept_up']:>5}/{s['kept_ck']:<5} {s['rules']:>6.1%} {s['signals']:>8.2%} "
            f"{s['uncovered']:>9}"
        )
    return "\n".join(lines)


def format_markdown(stats: dict[str, dict[str, Any]]) -> str:
    """The agreement figures as the docs' table rows."""
    lines = [
        "| language | files | verdicts agree | ... where upstream parses | kept upstream / codekiln"
        " | fired rules equal | signal values equal |",
        "|---|---|---|---|---|---|---|",
    ]
    for tag, s in stats.items():
        lines.append(
            f"| {tag} | {s['files']} | {s['verdict']:.1%} | {s['verdict_parsed']:.1%} | "
            f"{s['kept_up']} / {s['kept_ck']} | {s['rules']:.1%} | {s['signals']:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference", type=Path, default=GOLDEN,
        help="verdicts in the golden file's format, e.g. the reference run on another corpus",
    )  # fmt: skip
    parser.add_argument("--lang", action="append", help="only these language tags")
    parser.add_argument(
        "--verdicts", action="store_true",
        help="list every file whose verdict differs, with the deviation rows that cover it",
    )  # fmt: skip
    parser.add_argument("--diffs", type=int, default=0, help="print up to N uncovered diffs")
    parser.add_argument("--signal", help="print every value difference of this upstream signal")
    parser.add_argument("--numpy", action="store_true", help="without the C extension's loops")
    parser.add_argument("--markdown", action="store_true", help="the figures as a docs table")
    parser.add_argument(
        "--reproduce", action="append", default=[], metavar="ROW",
        help="give this deviation row's upstream behaviour back (the filter stage's reproduce "
        "option; 'all': every row that can)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.numpy:
        from tests.stream.native import numpy_only

        with numpy_only():
            _report(args)
    else:
        _report(args)


def _report(args: argparse.Namespace) -> None:
    golden = load_golden(args.reference)
    if args.lang:
        golden.rows = [r for r in golden.rows if r["tag"] in args.lang]
    results = run(golden, reproduce=tuple(args.reproduce))
    print(f"golden: {len(golden.rows)} files, skipped {len(golden.skipped)}")
    if not results:  # nothing compared is no agreement figure
        raise SystemExit(f"no file of {args.reference} (of those --lang names) is here to compare")
    if args.markdown:
        print(format_markdown(agreement(results)))
        return
    print(format_agreement(agreement(results)))
    counts: Counter[str] = Counter()
    for res in results:
        counts.update(d[0] for d in res.uncovered_signals)
        counts.update(f"rule {d[0]}" for d in res.uncovered_rules)
    print("uncovered differences:", dict(counts.most_common()))
    if args.verdicts:
        rows: Counter[str] = Counter()
        for res in results:
            if res.verdict_agrees or res.upstream_unparsed:
                continue
            rows.update(res.rule_rows or {"(no row)"})
            kept = "kept upstream" if res.upstream_kept else "kept by codekiln"
            print(f"verdict {res.path} [{res.tag}] {kept}: {sorted(res.rule_rows) or 'NO ROW'}")
        print("rows behind the differing verdicts (upstream parses):", dict(rows.most_common()))
    shown = 0
    for res in results:
        if args.signal:
            for d in res.signal_diffs:
                if d[0] == args.signal:
                    print(f"{res.path}: {d[1]} != {d[2]}")
        if shown >= args.diffs or not (res.uncovered_signals or res.uncovered_rules):
            continue
        shown += 1
        print(f"{res.path} [{res.tag}] kept up={res.upstream_kept} ck={res.codekiln_kept}")
        for d in res.uncovered_signals:
            print(f"    signal {d[0]}: upstream {d[1]} codekiln {d[2]}")
        for r in res.uncovered_rules:
            print(f"    rule {r[0]}: upstream fired={r[1]} codekiln fired={r[2]}")


if __name__ == "__main__":
    main()
