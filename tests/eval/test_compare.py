"""compare: our pass@1 against every published baseline, with sources and dataset versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from codekiln.eval.cli import main
from codekiln.eval.compare import compare, load_baselines


def results(path: Path, name: str, version: str, n_tasks: int, *, base: float, plus: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "model": "my-coder",
        "dataset": {"name": name, "variant": "full", "version": version, "n_tasks": n_tasks},
        "pass_at_k": {"base": {"pass@1": base}, "plus": {"pass@1": plus}},
    }
    path.write_text(json.dumps(body))
    return path


@pytest.fixture
def two_results(tmp_path: Path) -> list[Path]:
    return [
        results(
            tmp_path / "he" / "eval_results.json",
            "humaneval+",
            "v0.1.10",
            164,
            base=70.0,
            plus=65.0,
        ),
        results(
            tmp_path / "mb" / "eval_results.json", "mbpp+", "v0.2.0", 378, base=75.0, plus=62.5
        ),
    ]


def test_every_baseline_model_is_listed_with_our_delta(two_results: list[Path]) -> None:
    """Each Qwen2.5-Coder and OpenCoder model appears with value and our delta."""
    text, _ = compare(two_results, None)
    for fam in load_baselines():
        for name in fam.models:
            assert name in text
    assert "66.5 (+3.5)" in text  # OpenCoder-8B-Base HumanEval 66.5, ours 70.0
    assert "70.4 (-7.9)" in text  # OpenCoder-8B-Base MBPP+ 70.4, ours 62.5


def test_dataset_versions_and_sources_are_printed(two_results: list[Path]) -> None:
    """MBPP+ 399-task v0.1.0 (Qwen) and 378-task v0.2.0 (ours, OpenCoder) are named."""
    text, _ = compare(two_results, None)
    assert "MBPP+ v0.1.0 (399 tasks)" in text
    assert "mbpp+ v0.2.0 (378 tasks)" in text
    assert "OpenCoder model cards" in text


def test_report_files_are_written(two_results: list[Path], tmp_path: Path) -> None:
    """--out writes a Markdown table and a PNG bar chart."""
    _, written = compare(two_results, tmp_path / "report")
    md = written["markdown"].read_text()
    assert md.count("\n|") > 16
    assert written["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_compare_prints_the_table(
    two_results: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """``codekiln-eval compare`` prints the table and exits 0."""
    assert main(["compare", *map(str, two_results)]) == 0
    out = capsys.readouterr().out
    assert "my-coder (this run)" in out
    assert "70.0" in out


def test_cli_without_sandbox_is_a_clear_error(
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """evaluate without a sandbox URL exits 2 and says how to give one."""
    monkeypatch.delenv("CODEKILN_SANDBOX_URL", raising=False)
    samples = tmp_path / "s.jsonl"
    samples.write_text("")
    argv = ["evaluate", str(samples), "--dataset", "humaneval+", "--data-dir", str(data_dir)]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert "--sandbox-url" in capsys.readouterr().err
