"""``codekiln-train launch``: render, submit and watch a training job on Kubernetes.

The launch machinery is split by concept, and this module re-exports its public names so
``codekiln.train.launcher`` stays the one import for callers:

- :mod:`codekiln.train.submit`: API access, create, watch, log streaming, the commands' tail;
- :mod:`codekiln.train.eval_launch`: ``codekiln-eval launch`` (:func:`eval_launch_main`);
- :mod:`codekiln.train.corpus_jobs`: the end of the pipeline's flow, :func:`on_corpus_committed`
  and :func:`validate_launch_config` (called through :mod:`codekiln.flow`).

Exit codes of the launch commands: 0 the job succeeded, 1 it failed (or timed out, or the API
refused it), 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from codekiln.train.corpus_jobs import on_corpus_committed, validate_launch_config
from codekiln.train.errors import ConfigError
from codekiln.train.eval_launch import eval_launch_main
from codekiln.train.kube import (
    DEFAULT_NAMESPACE,
    TRAIN_KINDS,
    TrainJobParams,
    Volumes,
    build_train_objects,
)
from codekiln.train.submit import (
    JobOutcome,
    add_launch_args,
    api_client,
    create_object,
    delete_object,
    job_container,
    launch_objects,
    submit_and_watch,
)

from codekiln.cli_common import CommandParser, from_args

__all__ = [
    "DEFAULT_NAMESPACE",
    "JobOutcome",
    "api_client",
    "create_object",
    "delete_object",
    "eval_launch_main",
    "job_container",
    "on_corpus_committed",
    "submit_and_watch",
    "train_launch_main",
    "validate_launch_config",
]


def _train_params(args: argparse.Namespace) -> TrainJobParams:
    try:
        raw = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read training config {args.config}: {exc}") from exc
    for key, value in (("corpus_dir", args.corpus_dir), ("tokenizer_path", args.tokenizer)):
        if value:
            raw.setdefault("data", {})[key] = value
    if args.checkpoint_dir:
        raw.setdefault("checkpoint", {})["dir"] = args.checkpoint_dir
    return from_args(
        TrainJobParams,
        args,
        train_config=raw,
        gpus_per_node=args.gpus,
        volumes=Volumes(args.data_pvc, args.checkpoints_pvc),
    )


def train_launch_main(argv: list[str] | None = None) -> int:
    """``codekiln-train launch``."""
    parser = CommandParser(  # --help shows every default
        prog="codekiln-train launch",
        description="Render, submit and watch a training job (PyTorchJob or Indexed Job).",
    )
    add_launch_args(parser)
    parser.add_argument("--config", required=True, help="training config YAML (pod paths)")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus", type=int, default=8, help="GPUs per node (0: CPU only)")
    parser.add_argument("--kind", choices=TRAIN_KINDS, default="pytorchjob")
    parser.add_argument("--corpus-dir", default=None, help="overrides data.corpus_dir")
    parser.add_argument("--tokenizer", default=None, help="overrides data.tokenizer_path")
    parser.add_argument("--checkpoint-dir", default=None, help="overrides checkpoint.dir")
    args = parser.parse_args(argv)
    return launch_objects(lambda: build_train_objects(_train_params(args)), args, parser.prog)
