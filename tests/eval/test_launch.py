"""``codekiln-eval launch`` is the train component's launcher; its Job runs our ``run``."""

from __future__ import annotations

import shlex

import pytest
import yaml
from codekiln.eval.cli import build_parser, main


def test_launch_dry_run_renders_a_job_whose_command_our_cli_accepts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The eval Job's ``codekiln-eval run ...`` commands parse with this CLI's parser."""
    argv = ["launch", "--dry-run", "--name", "ev", "--image", "codekiln:dev"]
    argv += ["--endpoint", "http://vllm:8000/v1", "--dataset", "humaneval+", "--dataset", "mbpp+"]
    assert main(argv) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    job = next(d for d in docs if d["kind"] == "Job")
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    commands = [shlex.split(c) for c in script.split("&&")]
    assert len(commands) == 2
    for command in commands:
        assert command[0] == "codekiln-eval"
        args = build_parser().parse_args(command[1:])
        assert args.command == "run"
        assert args.dataset in ("humaneval+", "mbpp+")
