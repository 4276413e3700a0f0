"""``codekiln-train``: run the trainer, print derived configs, launch jobs on Kubernetes.

::

    codekiln-train run --config FILE [--stop-at-step N]
    codekiln-train deepspeed-config --config FILE --world-size N
    codekiln-train export --config FILE --out DIR [--step-dir DIR]
    codekiln-train launch --config FILE --image IMAGE [--gpus N --nodes N ...] [--dry-run]

Exit codes: 0 success, 1 the job or run failed, 2 bad input (config, arguments), 130
interrupted (Ctrl-C: the last checkpoint is kept; the same command resumes from it).
"""

from __future__ import annotations

import argparse
import json
import sys

from codekiln.train.errors import ConfigError, DataError, TrainError

from codekiln.cli_common import CommandParser, internal_error, quiet_on_closed_stdout


def _run(args: argparse.Namespace) -> int:
    from codekiln.train.config import TrainConfig
    from codekiln.train.trainer import Trainer

    cfg = TrainConfig.load(args.config)
    trainer = Trainer(cfg, stop_at_step=args.stop_at_step)
    result = trainer.run()
    if not trainer.env.is_main:
        return 0
    print(
        json.dumps(
            {
                "event": "done",
                "steps": result.steps_done,
                "resumed_from": result.resumed_from,
                "final_loss": result.losses[-1][1] if result.losses else None,
                "export_dir": result.export_dir,
            }
        ),
        flush=True,
    )
    return 0


def _ds_config(args: argparse.Namespace) -> int:
    from codekiln.train.config import TrainConfig
    from codekiln.train.distributed import deepspeed_config

    cfg = TrainConfig.load(args.config)
    cfg.validate(args.world_size)
    bf16 = not args.no_bf16 and cfg.precision != "fp32"
    print(json.dumps(deepspeed_config(cfg, args.world_size, bf16=bf16), indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from codekiln.train.config import TrainConfig
    from codekiln.train.export import check_export, export_checkpoint

    cfg = TrainConfig.load(args.config)
    out = export_checkpoint(cfg, Path(args.out), Path(args.step_dir) if args.step_dir else None)
    ids = check_export(out)
    print(json.dumps({"event": "exported", "dir": str(out), "eos": ids.eos, "pad": ids.pad}))
    return 0


@quiet_on_closed_stdout
def main(argv: list[str] | None = None) -> int:
    # --help shows every default, the subcommands' too
    parser = CommandParser(prog="codekiln-train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train (CPU or GPU; start with torchrun for several ranks)")
    run.add_argument("--config", required=True, help="training config YAML")
    run.add_argument(
        "--stop-at-step", type=int, default=None, help="checkpoint and stop after this step"
    )
    ds = sub.add_parser("deepspeed-config", help="print the DeepSpeed JSON for a config")
    ds.add_argument("--config", required=True)
    ds.add_argument("--world-size", type=int, required=True)
    ds.add_argument(
        "--no-bf16", action="store_true", help="bf16 off (always off for precision: fp32)"
    )
    export = sub.add_parser(
        "export",
        help="write a checkpoint as a Hugging Face model vLLM serves as is",
    )
    export.add_argument("--config", required=True, help="the run's training config YAML")
    export.add_argument("--out", required=True, help="folder for the model")
    export.add_argument("--step-dir", help="a step folder (default: checkpoint.dir's latest)")
    sub.add_parser(
        "launch", help="render and submit a training job (see launch --help)", add_help=False
    )
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "launch":
        from codekiln.train.launcher import train_launch_main

        return int(train_launch_main(argv[1:]))
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "export":
            return _export(args)
        return _ds_config(args)
    except BrokenPipeError:  # stdout's reader went away: quiet_on_closed_stdout ends it
        raise
    except (ConfigError, DataError) as exc:
        print(f"codekiln-train: error: {exc}", file=sys.stderr)
        return 2
    except TrainError as exc:
        print(f"codekiln-train: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "codekiln-train: interrupted; the last checkpoint is kept: run the same command "
            "again to resume from it",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # a bug, not a user error: one line here, the traceback logged
        return internal_error("codekiln-train", exc)


if __name__ == "__main__":
    sys.exit(main())
