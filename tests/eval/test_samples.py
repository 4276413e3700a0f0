"""Reading samples: evalplus's two fields, and bad lines quarantined with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from codekiln.eval.data import load_dataset
from codekiln.eval.errors import SampleError
from codekiln.eval.evaluate import read_samples


def test_solution_and_completion_fields_are_both_read(data_dir: Path, tmp_path: Path) -> None:
    """``solution`` is taken as is, ``completion`` is appended to the task prompt."""
    ds = load_dataset("humaneval+", data_dir)
    path = tmp_path / "s.jsonl"
    path.write_text(
        json.dumps({"task_id": "HumanEval/0", "solution": "def f(): pass"})
        + "\n"
        + json.dumps({"task_id": "HumanEval/1", "completion": "    return []\n"})
        + "\n"
    )
    samples, quarantine = read_samples(path, ds)
    assert [s.solution for s in samples] == [
        "def f(): pass",
        ds.tasks["HumanEval/1"].prompt + "    return []\n",
    ]
    assert quarantine.records == []


def test_bad_lines_are_quarantined_with_reasons(data_dir: Path, tmp_path: Path) -> None:
    """Bad JSON, unknown tasks and records without code are counted, not evaluated."""
    ds = load_dataset("humaneval+", data_dir)
    path = tmp_path / "s.jsonl"
    path.write_text(
        "{not json\n"
        + json.dumps({"task_id": "Mbpp/2", "solution": "x"})
        + "\n"
        + json.dumps({"task_id": "HumanEval/0", "solution": 3})
        + "\n"
        + json.dumps({"task_id": "HumanEval/0", "solution": "ok"})
        + "\n"
    )
    samples, quarantine = read_samples(path, ds)
    assert len(samples) == 1
    assert quarantine.counts() == {"bad json": 1, "unknown task": 1, "no code": 1}


def test_missing_samples_file_is_an_error(data_dir: Path, tmp_path: Path) -> None:
    """A samples path that does not exist raises SampleError naming it."""
    with pytest.raises(SampleError, match="not found"):
        read_samples(tmp_path / "none.jsonl", load_dataset("humaneval+", data_dir))
