"""``codekiln-eval launch``: a vLLM server for a checkpoint (or an existing endpoint) and the
evaluation Job against it, rendered by :mod:`codekiln.train.kube` and submitted by
:mod:`codekiln.train.submit`. The vLLM Deployment and Service are deleted when the Job ends.
"""

from __future__ import annotations

import argparse

from codekiln.train.kube import (
    EVAL_DATASETS,
    VLLM_IMAGE,
    EvalJobParams,
    Volumes,
    build_eval_objects,
)
from codekiln.train.submit import add_launch_args, launch_objects

from codekiln.cli_common import CommandParser, from_args

__all__ = ["eval_launch_main"]


def _eval_params(args: argparse.Namespace) -> EvalJobParams:
    return from_args(
        EvalJobParams,
        args,
        model_name=args.model,
        datasets=tuple(args.dataset or ("humaneval+", "mbpp+")),
        vllm_gpus=args.gpus,
        volumes=Volumes(args.data_pvc, args.checkpoints_pvc),
    )


def eval_launch_main(argv: list[str] | None = None) -> int:
    """``codekiln-eval launch``: vLLM serving a checkpoint (or an endpoint) + the eval Job."""
    parser = CommandParser(  # --help shows every default
        prog="codekiln-eval launch",
        description="Serve a checkpoint with vLLM and run the evaluation Job against it.",
    )
    add_launch_args(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-path", help="checkpoint dir on the checkpoints volume")
    where.add_argument("--endpoint", help="an existing OpenAI-compatible endpoint (…/v1)")
    parser.add_argument("--model", default="codekiln", help="served model name")
    parser.add_argument("--dataset", action="append", choices=EVAL_DATASETS)
    parser.add_argument("--mode", choices=("base", "instruct"), default="base")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--gpus", type=int, default=1, help="GPUs for the vLLM server")
    parser.add_argument("--vllm-image", default=VLLM_IMAGE)
    parser.add_argument("--out-dir", default="/data/eval")
    args = parser.parse_args(argv)
    return launch_objects(
        lambda: build_eval_objects(_eval_params(args)),
        args,
        parser.prog,
        cleanup=lambda objs: [o for o in objs if o["kind"] in ("Deployment", "Service")],
    )
