"""Bad input through every stage-1 stage: dropped or passed with a reason, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from codekiln.stream import dedup, preprocess, transform
from codekiln.stream.dedup import ExactDedupStage
from codekiln.stream.dedup.fuzzy import FuzzyDedupStage, MinHashStage
from codekiln.stream.record import Record
from codekiln.stream.stage import Stage
from codekiln.stream.transform import CopyrightStage
from s1_helpers import make_record, run_stage

BAD = {
    "nul.py": "x = 1\x00\x00\x01 binary",
    "surrogates.py": "s = '\udcff\udcfe' # undecodable bytes kept as escapes",
    "mixed.py": "caf\ufffd = 'na\ufffdve'  # latin-1 read as utf-8",
    "oneline.js": "var a=1;" * 400_000,
    "empty.py": "",
    "spaces.py": " \n\t\n",
    "emoji.py": "x = '😀' * 3  # 😀 outside the BMP",
}


def bad_records() -> list[Record]:
    return [make_record(path, text, repo=f"r{i % 2}") for i, (path, text) in enumerate(BAD.items())]


@pytest.mark.parametrize(
    "factory",
    [
        lambda tmp: ExactDedupStage(spill_dir=str(tmp)),
        lambda tmp: ExactDedupStage(spill_dir=str(tmp), memory_mb=0),
        lambda tmp: FuzzyDedupStage(spill_dir=str(tmp)),
        lambda tmp: FuzzyDedupStage(spill_dir=str(tmp), level="repository"),
        lambda tmp: FuzzyDedupStage(spill_dir=str(tmp), index="datasketch"),
        lambda tmp: MinHashStage(),
        lambda tmp: CopyrightStage(),
    ],
    ids=[
        "exact",
        "exact-spilled",
        "fuzzy",
        "fuzzy-repo",
        "fuzzy-datasketch",
        "minhash",
        "copyright",
    ],
)
def test_dedup_and_transform_survive_bad_input(tmp_path: Path, factory: object) -> None:
    """No record is lost or quarantined as an error; every text comes back byte-identical."""
    stage: Stage = factory(tmp_path)  # type: ignore[operator]
    out = run_stage(stage, bad_records())
    assert sorted(r.path for r in out) == sorted(BAD)
    assert not [r.drop_reason for r in out if r.drop_reason and ":error:" in r.drop_reason]
    assert {r.path: r.text for r in out} == BAD


def test_preprocess_drops_each_with_a_reason() -> None:
    """Preprocessing drops the bad kinds with their own reasons and keeps the good one."""
    out = preprocess.LanguageStage().process(bad_records())
    reasons = {r.path: r.drop_reason for r in out}
    assert reasons == {
        "nul.py": "preprocess:nul_bytes",
        "surrogates.py": "preprocess:invalid_utf8",
        "mixed.py": "preprocess:mixed_encoding",
        "oneline.js": "preprocess:long_line",
        "empty.py": "preprocess:empty",
        "spaces.py": "preprocess:empty",
        "emoji.py": None,
    }


def test_repository_without_words_is_counted(tmp_path: Path) -> None:
    """A repository whose files have no words is kept whole and counted in the report."""
    records = [
        make_record("a.txt", "+-+-", repo="noword"),
        make_record("b.txt", "** //", repo="noword"),
    ]
    stage = FuzzyDedupStage(spill_dir=str(tmp_path), level="repository")
    out = run_stage(stage, records)
    assert [r.drop_reason for r in out] == [None, None]
    assert stage.report()["repositories_without_shingles"] == 1


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (preprocess, {"EXCLUDED_LANGUAGES", "Detection", "Language", "LanguageStage",
                      "LanguageTable", "default_table"}),
        (dedup, {"DEFAULT_PRIORITY", "ExactDedupStage", "FuzzyDedupStage", "MinHashParams",
                 "MinHashStage", "PRESETS", "content_hash", "parse_priority", "sort_key"}),
        (transform, {"CommentSyntax", "CopyrightStage", "strip_licence_header", "syntax_for"}),
    ],
)  # fmt: skip
def test_exported_members(module: object, names: set[str]) -> None:
    """The public surface of each stage-1 package is exactly what we mean to export."""
    assert set(module.__all__) == names  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["exact", "fuzzy"])
def test_unserialisable_record_quarantined_alone(tmp_path: Path, kind: str) -> None:
    """A record that cannot be spilled is quarantined; its batch-mates are held exactly once."""
    stage: Stage = (
        ExactDedupStage(spill_dir=str(tmp_path))
        if kind == "exact"
        else FuzzyDedupStage(spill_dir=str(tmp_path))
    )
    good = [make_record(f"g{i}.py", f"value_{i} = compute({i}, other_{i})\n") for i in range(3)]
    bad = make_record("bad.py", "x = object_that_will_not_pickle()\n", hook=lambda: None)
    first = stage.process([good[0], bad, good[1]])
    assert [r.path for r in first] == ["bad.py"]
    assert str(first[0].drop_reason).startswith(f"{stage.name}:error:")
    out = stage.process([good[2]]) + list(stage.finish())
    assert sorted(r.path for r in out) == ["g0.py", "g1.py", "g2.py"]
