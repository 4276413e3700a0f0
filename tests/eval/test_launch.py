"""``codekiln-eval launch`` is the train component's launcher; its Job runs our ``run``, whose
argv :func:`codekiln.eval.cli.run_argv` spells beside the parser that reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from codekiln.eval.cli import build_parser, main
from codekiln.train.kube import EvalJobParams, build_eval_objects

from tests.eval.helpers import job_commands


def test_launch_dry_run_renders_a_job_whose_command_our_cli_accepts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The eval Job's ``codekiln-eval run ...`` commands parse with this CLI's parser."""
    argv = ["launch", "--dry-run", "--name", "ev", "--image", "codekiln:dev"]
    argv += ["--endpoint", "http://vllm:8000/v1", "--dataset", "humaneval+", "--dataset", "mbpp+"]
    assert main(argv) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    commands = job_commands(docs)
    assert len(commands) == 2
    for command in commands:
        assert command[0] == "codekiln-eval"
        args = build_parser().parse_args(command[1:])
        assert args.command == "run"
        assert args.dataset in ("humaneval+", "mbpp+")


@pytest.mark.parametrize(
    "params",
    [
        EvalJobParams(name="ev", image="codekiln:dev", endpoint="http://vllm:8000/v1"),
        # every value off its default; an output folder the shell would split unquoted
        EvalJobParams(
            name="ev-2",
            image="codekiln:dev",
            model_path="/checkpoints/run 1/final",
            model_name="my coder's model",
            datasets=("mbpp", "humaneval", "humaneval+"),
            mode="instruct",
            samples=7,
            temperature=0.35,
            out_dir="/data/eval runs/$HOME;&&x",
        ),
    ],
    ids=["defaults", "every-value-set"],
)
def test_job_argv_round_trips_through_the_eval_parser(params: EvalJobParams) -> None:
    """Each Job command, split as the shell splits it, parses with ``codekiln-eval``'s own
    parser into the job's values: the launcher and the CLI cannot drift apart."""
    commands = job_commands(build_eval_objects(params))
    assert len(commands) == len(params.datasets)
    for dataset, command in zip(params.datasets, commands, strict=True):
        assert command[:2] == ["codekiln-eval", "run"]
        args = build_parser().parse_args(command[1:])
        got = {
            "endpoint": args.endpoint,
            "model": args.model,
            "dataset": args.dataset,
            "mode": args.mode,
            "samples": args.samples,
            "temperature": args.temperature,
            "out": args.out,
        }
        assert got == {
            "endpoint": params.endpoint_url,
            "model": params.model_name,
            "dataset": dataset,
            "mode": params.mode,
            "samples": params.samples,
            "temperature": params.temperature,
            "out": Path(params.out_dir, params.name, dataset),
        }
