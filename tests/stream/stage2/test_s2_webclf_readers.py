"""webclf's inputs read through codekiln.shards: every shard format, numbered lines, and a clear
error or a counted skip for a bad line (never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from codekiln.stream.webclf.cli import main as webclf_main
from codekiln.stream.webclf.model import CODE, OTHER, WebClfError, read_labelled, read_pages

from codekiln import shards

ROWS = [
    {"text": "def f(x):\n    return x", "label": "code"},
    {"text": "It rained all afternoon.", "label": "0"},
    {"text": "für ünïcode 'ß'", "label": "__label__code", "url": "https://a.dev/x"},
]
PAIRS = [(ROWS[0]["text"], CODE), (ROWS[1]["text"], OTHER), (ROWS[2]["text"], CODE)]


def _lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["l.jsonl", "l.jsonl.zst", "l.jsonl.gz", "l.parquet"])
def test_labelled_pages_read_from_every_shard_format(tmp_path: Path, name: str) -> None:
    """A labelled file written as JSONL, zstd, gzip or Parquet gives the same pairs."""
    path = tmp_path / name
    shards.write_objects(path, ROWS)
    assert list(read_labelled(path)) == PAIRS


def test_a_name_without_a_shard_suffix_is_read_as_json_lines(tmp_path: Path) -> None:
    """webclf read any file name as JSON lines before; it still does, blank lines skipped."""
    path = _lines(tmp_path / "labelled.txt", [json.dumps(ROWS[0]), "", "  ", json.dumps(ROWS[1])])
    assert list(read_labelled(path)) == PAIRS[:2]
    assert [n for n, _ in read_pages(path)] == [1, 4]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"l.jsonl:2: expected a JSON object with 'text', 'label': "),
        ("[1, 2]", r"l.jsonl:2: expected a JSON object with 'text', 'label': a JSON list"),
        ('{"text": "x"}', r"l.jsonl:2: expected a JSON object with 'text', 'label'; no 'label'"),
        ('{"text": "x", "label": "maybe"}', r"l.jsonl:2: unknown label 'maybe'"),
    ],
)
def test_a_bad_labelled_line_names_the_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    """Malformed JSON, a non-object, a missing key or an unknown label: WebClfError at line 2."""
    path = _lines(tmp_path / "l.jsonl", [json.dumps(ROWS[0]), line])
    with pytest.raises(WebClfError, match=message):
        list(read_labelled(path))


def test_iterate_with_a_bad_pool_line_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pool line without text stops ``webclf iterate`` with exit 2 and file:line."""
    seeds = tmp_path / "seeds.jsonl"
    shards.write_objects(seeds, ROWS)
    pool = _lines(tmp_path / "pool.jsonl", [json.dumps(ROWS[0]), '{"url": "https://a.dev/"}'])
    argv = ["webclf", "iterate", "--seeds", str(seeds), "--pool", str(pool)]
    assert webclf_main([*argv, "--out", str(tmp_path / "m.bin")]) == 2
    err = capsys.readouterr().err
    assert "pool.jsonl:2: expected a JSON object with 'text'; no 'text'" in err
    assert "Traceback" not in err


def test_score_and_domains_count_the_lines_they_skip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """score skips (and counts) lines that are no page, from a .jsonl.zst input; domains counts
    the lines of its input without a score."""
    train = tmp_path / "train.jsonl"
    shards.write_objects(train, [{"text": ROWS[i % 2]["text"], "label": ROWS[i % 2]["label"]}
                                 for i in range(40)])  # fmt: skip
    model = tmp_path / "m.bin"
    common = ["--dim", "4", "--epoch", "2", "--holdout", "0"]
    assert webclf_main(["webclf", "train", "--data", str(train), "--out", str(model), *common]) == 0
    pages = tmp_path / "pages.jsonl.zst"
    shards.write_objects(pages, [ROWS[0], {"url": "https://b.dev/"}, ROWS[2], {"text": 3}])
    scored = tmp_path / "scored.jsonl"
    capsys.readouterr()
    argv = ["webclf", "score", str(pages), "--model", str(model), "--out", str(scored)]
    assert webclf_main(argv) == 0
    assert "scored 2 records" in (out := capsys.readouterr().out)
    assert "(2 malformed lines skipped)" in out
    lines = scored.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["text"] for line in lines] == [ROWS[0]["text"], ROWS[2]["text"]]
    with scored.open("a", encoding="utf-8") as fh:
        fh.write("{torn\n" + json.dumps({"text": "no score"}) + "\n")
    assert webclf_main(["webclf", "domains", str(scored)]) == 0
    assert "2 lines without a meta.code_score skipped" in capsys.readouterr().out
