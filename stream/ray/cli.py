"""The ``run`` options of the Ray executor, and the hand-off from ``codekiln-stream run``."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from typing import Any, TypeVar

from codekiln.stream.ray.options import RayOptions
from codekiln.stream.runtime.errors import ConfigError

from codekiln.cli_common import from_args

Number = TypeVar("Number", int, float)


def _above(
    convert: Callable[[str], Number], noun: str, bound: int, *, or_equal: bool
) -> Callable[[str], Number]:
    """An argparse ``type``: ``convert`` of the text, refused unless above ``bound`` (or equal to
    it when ``or_equal``)."""

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
        if value < bound or (value == bound and not or_equal):
            relation = ">=" if or_equal else ">"
            raise argparse.ArgumentTypeError(f"must be {relation} {bound}, got {value}")
        return value

    return parse


_positive_int = _above(int, "an integer", 1, or_equal=True)
_positive_float = _above(float, "a number", 0, or_equal=False)


def add_arguments(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group("executor")
    group.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: this machine's runtime; ray: shards as Ray tasks (same config, same output)",
    )
    group.add_argument(
        "--address",
        help="Ray cluster to join: auto (inside a cluster), host:port, or ray://host:10001; "
        "default: start a local Ray instance bound to 127.0.0.1",
    )
    defaults = RayOptions()
    group.add_argument(
        "--shard-files",
        type=_positive_int,
        default=defaults.shard_files,
        help=f"ray: files per shard of a directory input (default {defaults.shard_files})",
    )
    group.add_argument(
        "--partitions",
        type=_positive_int,
        default=defaults.partitions,
        help=f"ray: dedup shuffle partitions (default {defaults.partitions})",
    )
    group.add_argument(
        "--task-timeout-s",
        type=_positive_float,
        default=defaults.task_timeout_s,
        help="ray: stop with an error when no task finishes for this long "
        f"(default {defaults.task_timeout_s:g})",
    )


def options_from_args(args: argparse.Namespace) -> RayOptions:
    """--address, --shard-files, --partitions, --task-timeout-s; --workers is the local
    instance's CPUs."""
    return from_args(RayOptions, args, num_cpus=args.workers or None)


def run_on_ray(spec: Any, args: argparse.Namespace, warn: Callable[[str], None]) -> Any:
    """``cmd_run``'s hand-off: the same JobSpec, run by :func:`run_ray_job`."""
    if importlib.util.find_spec("ray") is None:
        raise ConfigError("--executor ray needs Ray: pip install 'codekiln[ray]'")
    from codekiln.stream.ray.job import run_ray_blocking

    # In the main thread: Ctrl-C interrupts the driver's waits at once (the output resumes).
    return run_ray_blocking(spec, options_from_args(args), warn)


def wants_ray(args: argparse.Namespace) -> bool:
    """Whether ``run`` goes to Ray; Ray-only options without ``--executor ray`` are an error."""
    if getattr(args, "executor", "local") == "ray":
        return True
    if getattr(args, "address", None):
        raise ConfigError("--address is for --executor ray")
    return False
