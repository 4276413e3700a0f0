"""codekiln's filters against OpenCoder's own verdicts on real Debian files (the oracle).

Every signal value, fired rule and keep/drop verdict of the reference (see
tests/stream/stage2/opc_reference.py for how files are read and compared) must equal codekiln's,
except the differences a row of the intentional-deviation table covers; that table is the one
docs/stream-stage2.md shows. Agreement per language:
``python -m tests.stream.stage2.opc_reference``.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from codekiln.stream.filters import REPRODUCE_ALL
from codekiln.stream.filters.deviations import (
    DeviationTableError,
    load_deviations,
    render_markdown,
)

from tests.stream.stage2 import opc_reference as ref
from tests.stream.stage2.opc_packages import missing_packages

DOCS = ref.REPO / "docs" / "stream-stage2.md"
BEGIN, END = "<!-- opc-deviations:begin -->", "<!-- opc-deviations:end -->"
AGREE_BEGIN, AGREE_END = "<!-- opc-agreement:begin -->", "<!-- opc-agreement:end -->"
#: At most this share of the golden files may be missing or changed before the test fails
#: (the machine lacks the Debian packages the reference was made from: see the Makefile).
MAX_SKIPPED = 0.05
#: Every language of the golden set.
LANGUAGES = ("C", "C++", "HTML", "JavaScript", "Perl", "Python", "SQL", "Shell")


@pytest.fixture(scope="module")
def golden() -> ref.Golden:
    if not ref.GOLDEN.is_file():
        pytest.skip(f"no reference verdicts at {ref.GOLDEN} (set CODEKILN_REFERENCE_DIR)")
    return ref.load_golden()


@pytest.fixture(scope="module")
def results(golden: ref.Golden) -> list[ref.FileResult]:
    return ref.run(golden)


def test_golden_files_are_here(golden: ref.Golden) -> None:
    """The files the reference judged are on this machine with the same bytes."""
    skipped = len(golden.skipped)
    assert golden.rows, "the golden file holds no rows"
    assert skipped <= MAX_SKIPPED * len(golden.rows), (
        f"{skipped} of {len(golden.rows)} golden files missing or changed, e.g. "
        f"{sorted(golden.skipped.items())[:5]}; `make test-tools` installs their packages "
        f"({' '.join(missing_packages(ref.GOLDEN))})"
    )


def _uncovered(results: list[ref.FileResult]) -> list[str]:
    out = []
    for res in results:
        for name, want, got in res.uncovered_signals:
            out.append(f"{res.path} [{res.tag}] signal {name}: upstream {want} codekiln {got}")
        for name, up, mine in res.uncovered_rules:
            out.append(f"{res.path} [{res.tag}] rule {name}: upstream {up} codekiln {mine}")
    return out


@pytest.mark.parametrize("language", LANGUAGES)
def test_signals_and_rules_equal_reference(results: list[ref.FileResult], language: str) -> None:
    """Each difference in a signal value or a fired rule is a row of the deviation table."""
    mine = [r for r in results if r.tag == language]
    assert mine, f"no golden file of {language}"
    diffs = _uncovered(mine)
    stats = ref.format_agreement(ref.agreement(mine))
    assert not diffs, f"{len(diffs)} uncovered differences\n{stats}\n" + "\n".join(diffs[:40])


@pytest.mark.parametrize("language", LANGUAGES)
def test_verdicts_equal_reference(results: list[ref.FileResult], language: str) -> None:
    """Every keep/drop verdict equals the reference's unless the deviation table explains it."""
    bad = [
        f"{r.path} [{r.tag}]: upstream kept={r.upstream_kept}, codekiln kept={r.codekiln_kept}"
        for r in results
        if r.tag == language and not r.verdict_covered
    ]
    assert not bad, f"{len(bad)} verdicts differ\n" + "\n".join(bad[:40])


def test_every_row_is_needed(results: list[ref.FileResult]) -> None:
    """A row that lists files covers a difference on each; a row whose example is in the
    golden set covers a difference on it (no stale rows)."""
    by_path = {r.path: r for r in results}
    stale = []
    for row in load_deviations():
        files = row.files if isinstance(row.files, tuple) else ()
        if row.example.startswith("/") and " " not in row.example:
            files = (*files, row.example)
        for path in files:
            res = by_path.get(path)
            if res is not None and row.id not in res.used_rows:
                stale.append(f"{row.id}: no difference it covers on {path}")
    assert not stale, "\n".join(stale)


@pytest.fixture(scope="module")
def reproduced(golden: ref.Golden) -> list[ref.FileResult]:
    return ref.run(golden, reproduce=(REPRODUCE_ALL,))


@pytest.mark.parametrize("language", LANGUAGES)
def test_reproduced_rows_leave_no_difference_of_theirs(
    reproduced: list[ref.FileResult], language: str
) -> None:
    """With every reproducible row's upstream behaviour given back (the stage's ``reproduce:
    all``), what those rows covered is gone: no rule differs on their account, and the values of
    the signals they swapped equal upstream's, every other difference still a row's."""
    mine = [r for r in reproduced if r.tag == language]
    diffs = _uncovered(mine)
    stats = ref.format_agreement(ref.agreement(mine))
    assert not diffs, f"{len(diffs)} uncovered differences\n{stats}\n" + "\n".join(diffs[:40])
    bad = [r.path for r in mine if not r.verdict_covered]
    assert not bad, f"{len(bad)} verdicts differ with no row behind them: {bad[:20]}"


def test_reproducing_rows_moves_verdicts_to_upstreams(
    results: list[ref.FileResult], reproduced: list[ref.FileResult]
) -> None:
    """The golden files whose verdicts differ only on account of reproducible rows agree once
    those rows are reproduced, and no file that agreed stops agreeing."""
    reproducible = {row.id for row in load_deviations() if row.reproduce}
    by_path = {r.path: r for r in reproduced}
    moved = [
        r.path
        for r in results
        if not r.verdict_agrees and not r.upstream_unparsed and r.rule_rows <= reproducible
    ]
    assert moved, "no golden verdict differs on account of a reproducible row"
    assert [p for p in moved if not by_path[p].verdict_agrees] == []
    assert [
        r.path for r in results if r.verdict_agrees and not by_path[r.path].verdict_agrees
    ] == []


def test_another_corpus_is_compared_with_its_verdicts_listed(
    golden: ref.Golden,
    results: list[ref.FileResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--reference`` compares the reference's verdicts for any set of files (here a few
    golden rows written as another corpus would be) and ``--verdicts`` lists each file whose
    verdict differs with the rows behind it, as docs/stream-stage2.md uses it."""
    differ = [r for r in results if not r.verdict_agrees and not r.upstream_unparsed][:2]
    agree = [r for r in results if r.verdict_agrees][:3]
    assert (len(differ), len(agree)) == (2, 3)
    chosen = {r.path for r in differ + agree}
    corpus = tmp_path / "their-verdicts.jsonl.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as fh:
        for row in golden.rows:
            if row["path"] in chosen:
                fh.write(json.dumps(row) + "\n")
    monkeypatch.setattr(sys, "argv", ["opc_reference", "--reference", str(corpus), "--verdicts"])
    ref.main()
    out = capsys.readouterr().out
    assert out.startswith("golden: 5 files, skipped 0\n")
    listed = [line for line in out.splitlines() if line.startswith("verdict ")]
    assert listed == [
        f"verdict {r.path} [{r.tag}] "
        f"{'kept upstream' if r.upstream_kept else 'kept by codekiln'}: {sorted(r.rule_rows)}"
        for r in differ
    ]
    rows = Counter(row for r in differ for row in r.rule_rows or {"(no row)"})
    summary = f"rows behind the differing verdicts (upstream parses): {dict(rows.most_common())}"
    assert out.rstrip("\n").endswith(summary)


def test_docs_agreement_figures_are_current(results: list[ref.FileResult]) -> None:
    """docs/stream-stage2.md shows the agreement figures this code reaches."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(re.escape(AGREE_BEGIN) + r"\n(.*?)" + re.escape(AGREE_END), text, re.S)
    assert match, f"{DOCS} lacks the {AGREE_BEGIN} ... {AGREE_END} block"
    assert match.group(1) == ref.format_markdown(ref.agreement(results)) + "\n", (
        "the docs' agreement figures are not the current ones: "
        "run python -m tests.stream.stage2.test_opc_reference --write-docs"
    )


def test_docs_table_is_the_data() -> None:
    """docs/stream-stage2.md shows exactly the deviation table's rows."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    assert match, f"{DOCS} lacks the {BEGIN} ... {END} block"
    assert match.group(1) == render_markdown(load_deviations()), (
        "the docs' deviation table differs from stream/filters/data/opc_deviations.yaml: "
        "run python -m tests.stream.stage2.test_opc_reference --write-docs"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("deviations: [", "not valid YAML"),
        ("rows: []", "a list under 'deviations'"),
        ("deviations: [{id: x}]", "missing key(s)"),
        (
            "deviations: [{id: x, rule: r, upstream: u, codekiln: c, reason: r, example: e,"
            " covers: {files: some}}]",
            "covers.files must be",
        ),
        (
            "deviations: [{id: x, rule: r, upstream: u, codekiln: c, reason: r, example: e,"
            " covers: {}}]",
            "names no signal and no rule",
        ),
        (
            "deviations: [{id: x, rule: r, upstream: u, codekiln: c, reason: r, example: e,"
            " corpus_examples: one, covers: {rules: [a]}}]",
            "corpus_examples: must be a list of strings",
        ),
        (
            "deviations: [{id: x, rule: r, upstream: u, codekiln: c, reason: r, example: e,"
            " reproduce: [python], covers: {rules: [a]}}]",
            "reproduce must map tables to rules to fields",
        ),
        (
            "deviations: [{id: x, rule: r, upstream: u, codekiln: c, reason: r, example: e,"
            " reproduce: {python: {py_frac_lines_pass: {}}}, covers: {rules: [a]}}]",
            "reproduce must map tables to rules to fields",
        ),
    ],
)
def test_malformed_table_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(DeviationTableError, match=re.escape(message)):
        load_deviations(text)


def test_corpus_examples_are_shown_after_the_example() -> None:
    """Examples from the other corpora (outside the golden set) follow the golden example in
    the docs' example cell, in the table's order."""
    (row,) = load_deviations(
        "deviations: [{id: x, rule: r, upstream: u, codekiln: c, reason: r, example: /a/b.c,"
        " corpus_examples: ['pkg 1.0: z.c', 'pkg 1.0: a.c'], covers: {rules: [a]}}]"
    )
    assert row.corpus_examples == ("pkg 1.0: z.c", "pkg 1.0: a.c")
    assert "| `/a/b.c`; other corpora: pkg 1.0: z.c; pkg 1.0: a.c |" in render_markdown((row,))


def _replace_block(text: str, begin: str, end: str, body: str) -> str:
    block = begin + "\n" + body + end
    new, count = re.subn(
        re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S
    )
    if not count:
        raise SystemExit(f"{DOCS} lacks the {begin} ... {end} block")
    return new


def write_docs(path: Path = DOCS) -> None:
    """Rewrite the docs' deviation table and agreement figures from the data and the code."""
    text = path.read_text(encoding="utf-8")
    text = _replace_block(text, BEGIN, END, render_markdown(load_deviations()))
    if ref.GOLDEN.is_file():
        figures = ref.format_markdown(ref.agreement(ref.run(ref.load_golden())))
        text = _replace_block(text, AGREE_BEGIN, AGREE_END, figures + "\n")
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--write-docs"]:
        raise SystemExit(f"usage: python -m {__spec__.name if __spec__ else __file__} --write-docs")
    write_docs()
