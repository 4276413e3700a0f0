"""Issue 19: a wrong sandbox token is one clear line and exit 2, before any work (synth, eval)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from codekiln.eval.data import load_dataset

from codekiln import shards
from tests.eval.helpers import evaluate_canonical_argv
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fixtures.sandbox import SandboxService

pytestmark = pytest.mark.docker


async def _run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _wrong_token(tmp_path: Path) -> Path:
    path = tmp_path / "wrong-token"
    path.write_text("not-the-token\n")
    return path


async def test_eval_wrong_token_is_one_line(
    sandbox_service: SandboxService, data_dir: Path, tmp_path: Path
) -> None:
    """codekiln-eval evaluate with a refused token: exit 2, one line, no exception group."""
    task = next(iter(load_dataset("humaneval+", data_dir).tasks.values()))
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": task.task_id, "solution": task.canonical}) + "\n")
    code, _out, err = await _run(
        "-m", "codekiln.eval.cli", "evaluate", str(samples), "--dataset", "humaneval+",
        "--data-dir", str(data_dir), "--out", str(tmp_path / "out"), "--limit", "1",
        "--sandbox-url", sandbox_service.url, "--sandbox-token-file", str(_wrong_token(tmp_path)),
    )  # fmt: skip
    assert code == 2, err
    assert err.strip().count("\n") == 0, err
    assert "refused the token" in err
    assert "Traceback" not in err


async def test_synth_wrong_token_is_one_line(
    sandbox_service: SandboxService, data_dir: Path, tmp_path: Path
) -> None:
    """codekiln-synth run with a refused token stops before synthesis (was: every sample
    exec:sandbox_error, exit 0)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shards.write_objects(
        corpus / "part-00000.jsonl.zst",
        [{"id": "1", "text": "def add(a, b):\n    return a + b\n", "lang": "Python"}],
    )
    async with FakeOpenAIServer(model="fake-coder") as llm:
        code, _out, err = await _run(
            "-m", "codekiln.synth.cli", "run", "--corpus", str(corpus),
            "--out", str(tmp_path / "out"), "--llm-url", llm.url,
            "--sandbox-url", sandbox_service.url,
            "--sandbox-token-file", str(_wrong_token(tmp_path)), "--data-dir", str(data_dir),
        )  # fmt: skip
    assert code == 2, err
    assert "refused the token" in err
    assert err.strip().count("\n") == 0, err
    assert not (tmp_path / "out" / "annealing").exists()


def test_synth_has_no_bare_token_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """The secret is never a command-line value: --sandbox-token is gone, the file flag is there."""
    from codekiln.synth.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--sandbox-token-file" in text
    assert "--sandbox-token " not in text


async def test_eval_ctrl_c_is_one_line_and_resumes(
    sandbox_service: SandboxService, data_dir: Path, tmp_path: Path
) -> None:
    """SIGINT during evaluate: exit 130 with one line; the same command then finishes."""
    import signal

    argv = evaluate_canonical_argv(sandbox_service, data_dir, tmp_path, tasks=12, limit=12)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    first = await proc.stderr.readline()  # "humaneval+ ...: 12 samples, 0 already done"
    assert b"samples" in first
    proc.send_signal(signal.SIGINT)
    _, rest = await proc.communicate()
    err = rest.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("codekiln-eval: interrupted")
    again = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err2 = await again.communicate()
    assert again.returncode == 0, err2.decode()[-2000:]
    assert b"pass@1: 100.0" in out
