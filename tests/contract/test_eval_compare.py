"""Issue 19: `codekiln-eval compare` marks --limit runs and says when a result is shadowed;
--limit runs leave later tasks' samples out instead of quarantining them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from codekiln.eval.compare import compare

from tests.eval.helpers import evaluate_canonical_argv
from tests.fixtures.sandbox import SandboxService


def _results(path: Path, *, base: float, plus: float, partial: dict[str, int] | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body: dict[str, object] = {
        "model": "my-coder",
        "dataset": {"name": "humaneval+", "variant": "full", "version": "v0.1.10", "n_tasks": 164},
        "pass_at_k": {"base": {"pass@1": base}, "plus": {"pass@1": plus}},
    }
    if partial is not None:
        body["partial"] = partial
        body["dataset"]["n_tasks"] = partial["tasks"]  # type: ignore[index]
    path.write_text(json.dumps(body))
    return path


def test_partial_run_is_marked_and_gets_no_delta(tmp_path: Path) -> None:
    """A --limit run's score carries '*', a note naming its task count, and no deltas."""
    partial = _results(
        tmp_path / "p" / "eval_results.json",
        base=90.0,
        plus=85.0,
        partial={"limit": 10, "tasks": 10, "of_tasks": 164},
    )
    text, _ = compare([partial], None)
    assert "90.0*" in text
    assert "10 of 164 tasks" in text
    assert "(+" not in text
    assert "(-" not in text


def test_old_partial_results_are_recognised_by_their_note(tmp_path: Path) -> None:
    """Results written before the partial field are marked by their 'first N tasks' note."""
    path = _results(tmp_path / "o" / "eval_results.json", base=50.0, plus=40.0, partial=None)
    body = json.loads(path.read_text())
    body["dataset"]["notes"] = ["first 20 tasks"]
    path.write_text(json.dumps(body))
    text, _ = compare([path], None)
    assert "50.0*" in text
    assert "first 20 tasks" in text


def test_duplicate_runs_are_named(tmp_path: Path) -> None:
    """Two results for the same model and column: the note names both files."""
    a = _results(tmp_path / "a" / "eval_results.json", base=60.0, plus=55.0, partial=None)
    b = _results(tmp_path / "b" / "eval_results.json", base=70.0, plus=65.0, partial=None)
    text, _ = compare([a, b], None)
    assert "2 results files give this column" in text
    assert str(a) in text
    assert str(b) in text
    assert "70.0" in text


@pytest.mark.docker
async def test_limit_leaves_later_tasks_out_not_quarantined(
    sandbox_service: SandboxService, data_dir: Path, tmp_path: Path
) -> None:
    """evaluate --limit 1 --json on samples of 3 tasks: 1 evaluated, 2 counted outside the
    limit, the summary as JSON on stdout."""
    import asyncio

    argv = evaluate_canonical_argv(sandbox_service, data_dir, tmp_path, tasks=3, limit=1)
    out = tmp_path / "out"
    proc = await asyncio.create_subprocess_exec(
        *argv, "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "samples: 1/1 (" in err.decode()  # count, rate and elapsed time
    summary = json.loads(stdout)  # --json: one object on stdout
    assert summary["pass_at_k"]["base"]["pass@1"] == 100.0
    body = json.loads((out / "eval_results.json").read_text())
    assert body["counts"]["quarantined"] == 0
    assert body["counts"]["samples"] == 1
    assert body["partial"] == {"limit": 1, "tasks": 1, "of_tasks": 164, "samples_outside_limit": 2}


def test_compare_json_and_help_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """compare --json prints data with the partial mark; evaluate --help shows defaults."""
    from codekiln.eval.cli import main

    path = _results(
        tmp_path / "p" / "eval_results.json",
        base=90.0,
        plus=85.0,
        partial={"limit": 10, "tasks": 10, "of_tasks": 164},
    )
    assert main(["compare", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ours"][0]["partial"] == {
        "humaneval": "10 of 164 tasks",
        "humaneval+": "10 of 164 tasks",
    }
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "(default: 4)" in capsys.readouterr().out  # --concurrency
