"""Reading samples: evalplus's two fields, and bad lines quarantined with a reason."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from codekiln.eval.cli import main
from codekiln.eval.data import load_dataset
from codekiln.eval.errors import SampleError
from codekiln.eval.evaluate import read_samples

from codekiln import shards


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


def _lines(*records: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_compressed_samples_read_like_plain(data_dir: Path, tmp_path: Path, suffix: str) -> None:
    """A .gz or .zst samples file gives the samples of the same lines uncompressed (a .gz file
    was read as text: every line 'bad json', nothing evaluated)."""
    ds = load_dataset("humaneval+", data_dir)
    rows = [
        {"task_id": "HumanEval/0", "solution": "def f(): pass"},
        {"task_id": "HumanEval/1", "completion": "    return []\n"},
    ]
    plain = tmp_path / "s.jsonl"
    plain.write_bytes(_lines(*rows))
    packed = tmp_path / f"s{suffix}"
    shards.write_objects(packed, rows)
    assert read_samples(packed, ds)[0] == read_samples(plain, ds)[0]
    assert len(read_samples(packed, ds)[0]) == 2


def test_truncated_gz_quarantines_the_rest_as_corrupt(data_dir: Path, tmp_path: Path) -> None:
    """A gzip stream cut short: the samples before the cut, and one 'corrupt' quarantine line."""
    ds = load_dataset("humaneval+", data_dir)
    path = tmp_path / "s.jsonl.gz"
    # Over 1 MiB decompressed: the reader decompresses in 1 MiB pieces, and what comes before
    # the piece with the cut is kept.
    rows = [{"task_id": f"HumanEval/{i % 164}", "solution": f"x = {i}" * 60} for i in range(3000)]
    path.write_bytes(gzip.compress(_lines(*rows))[:-600])
    samples, quarantine = read_samples(path, ds)
    assert 0 < len(samples) < 3000
    assert [s.solution for s in samples] == [f"x = {i}" * 60 for i in range(len(samples))]
    assert quarantine.counts() == {"corrupt": 1}


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "no usable sample"),
        (b"\n\n", "no usable sample"),
        (b"{not json\n[1]\n", "2 lines quarantined (bad json 1, no task_id 1)"),
        (gzip.compress(b'{"task_id": "HumanEval/0", "solution": "x"}\n'), "bad json 1"),
    ],
    ids=["empty", "blank", "bad-lines", "gz-named-jsonl"],
)
def test_a_file_without_any_usable_sample_is_an_error(
    data_dir: Path, tmp_path: Path, content: bytes, said: str
) -> None:
    """Evaluating nothing is not a score: SampleError, saying what was quarantined."""
    path = tmp_path / "s.jsonl"
    path.write_bytes(content)
    with pytest.raises(SampleError, match=re.escape(said)):
        read_samples(path, load_dataset("humaneval+", data_dir))


def test_cli_says_no_usable_sample_before_any_sandbox_call(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """codekiln-eval evaluate on a file with no usable sample exits 1 with one line, before it
    contacts the sandbox (the URL here has nothing listening)."""
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"{not json\n")
    argv = ["evaluate", str(path), "--dataset", "humaneval+", "--data-dir", str(data_dir)]
    argv += ["--out", str(tmp_path / "o"), "--sandbox-url", "http://127.0.0.1:9"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no usable sample" in err
    assert "Traceback" not in err
