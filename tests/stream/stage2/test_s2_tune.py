"""Threshold tuning command and its perplexity proxy."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from codekiln.stream.cli import build_parser
from codekiln.stream.filters.tune import BigramModel, _tokens, main, score_corpus, sweep
from codekiln.stream.record import Record


def _module(i: int, prints: int) -> str:
    rng = random.Random(i)
    names = [
        f"{rng.choice(['load', 'save', 'parse', 'emit'])}_{rng.randint(0, 999)}" for _ in range(6)
    ]
    lines = [f"import module_{i}", ""]
    for name in names:
        lines += [
            f"def {name}(value, limit={i}):",
            "    total = value + limit",
            "    return total",
            "",
        ]
    lines += [f'print("progress", {j}, "of", {i})' for j in range(prints)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    rows = [
        {"id": str(i), "text": _module(i, prints=i % 5 * 10), "lang": "Python", "path": f"m{i}.py"}
        for i in range(40)
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_perplexity_lower_for_in_distribution_text() -> None:
    """The bigram proxy gives corpus-like text lower perplexity than shuffled gibberish."""
    model = BigramModel()
    for i in range(50):
        model.add(_tokens(_module(i, prints=3)))
    typical = model.perplexity(_tokens(_module(1000, prints=3)))
    gibberish = " ".join(f"zq{random.Random(i).randint(0, 10**9)}x" for i in range(200))
    assert typical < model.perplexity(_tokens(gibberish)) / 5


def test_sweep_counts_add_up_and_mark_configured(corpus: Path) -> None:
    """Every candidate threshold splits the same records; the configured one is marked."""
    records = [Record.from_json(json.loads(line)) for line in corpus.read_text().splitlines()]
    scored, rules = score_corpus(records, "py_frac_lines_print", table="python")
    rows = sweep(scored, rules["python"], extra=[0.33])
    assert all(row["retained"] + row["filtered"] == 40 for row in rows)
    assert sum(row["configured"] for row in rows) == 1
    assert any(row["threshold"] == 0.33 for row in rows)
    # Lower thresholds never filter fewer records ("drop if value > threshold").
    filtered = [row["filtered"] for row in rows]
    assert filtered == sorted(filtered, reverse=True)


def test_cli_prints_table_and_writes_json(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tune command prints retained/filtered rows and writes them as JSON."""
    out = tmp_path / "tune.json"
    assert main(["tune", str(corpus), "--rule", "py_frac_lines_print", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "<- configured" in printed
    assert "python" in json.loads(out.read_text())


def test_unknown_rule_is_an_error(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rule no table has exits 2 with its name in the message."""
    assert main(["tune", str(corpus), "--rule", "no_such_rule"]) == 2
    assert "no_such_rule" in capsys.readouterr().err


def test_commands_registered_in_codekiln_stream() -> None:
    """codekiln-stream has the tune, anneal-mix and webclf subcommands."""
    parser = build_parser()
    for argv in (
        ["tune", "--list-signals"],
        ["anneal-mix", "x", "--out", "y"],
        ["webclf", "domains", "s"],
    ):
        assert callable(parser.parse_args(argv).func)
