"""``codekiln-stream anneal-mix``: the annealing mixture from a run's corpus and HQ streams."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from codekiln.stream.sampling.mixture import MixSpec, MixtureError, build_mixture
from codekiln.stream.subcommand import standalone_main

from codekiln.cli_common import from_args


def _named_paths(values: list[str]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise MixtureError(f"--hq expects NAME=PATH, got {value!r}")
        out.setdefault(name, []).append(Path(path))
    return out


def _weights(value: str | None) -> dict[str, float]:
    if not value:
        return {}
    out: dict[str, float] = {}
    for item in value.split(","):
        name, sep, weight = item.partition("=")
        try:
            out[name.strip()] = float(weight)
        except ValueError:
            raise MixtureError(f"--weights expects NAME=NUMBER,..., got {item!r}") from None
        if not sep:
            raise MixtureError(f"--weights expects NAME=NUMBER,..., got {item!r}")
    return out


def cmd_anneal_mix(args: argparse.Namespace) -> int:
    try:
        hq = _named_paths(args.hq or [])
        spec = from_args(MixSpec, args, weights=_weights(args.weights))
        report = build_mixture([Path(p) for p in args.original], hq, Path(args.out), spec)
    except (MixtureError, OSError) as exc:
        print(f"codekiln-stream anneal-mix: error: {exc}", file=sys.stderr)
        return 2
    for name, row in report["streams"].items():
        short = "  (short: fewer records than its share needs)" if row["short"] else ""
        print(
            f"{name:12s} in {row['input_records']:>8} records  x{row['multiplier']:<7} "
            f"out {row['output_records']:>8}  share {100 * row['share']:5.1f}%{short}"
        )
    print(f"wrote {report['out']}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "anneal-mix",
        help="write the annealing mixture (original distribution + high-quality streams)",
        description=(
            "Mix the pretraining corpus (records not tagged meta.corpus=anneal) at "
            "--original-share with high-quality streams (the anneal-tagged records as "
            "'algorithmic', plus every --hq NAME=PATH) sharing the rest by --weights. "
            "Deterministic: sampling and repetition are decided by record hashes."
        ),
    )
    parser.add_argument("original", nargs="+", help="corpus JSONL(.zst) files or folders")
    parser.add_argument("--out", required=True, help="output .jsonl or .jsonl.zst")
    parser.add_argument("--hq", action="append", metavar="NAME=PATH", help="a high-quality stream")
    parser.add_argument("--original-share", type=float, default=0.84)
    parser.add_argument(
        "--weights", help="NAME=W,... within the high-quality share (default 1 each)"
    )
    parser.add_argument("--unit", choices=("chars", "records"), default="chars")
    parser.add_argument("--total", type=float, help="total size (default: original used once)")
    parser.add_argument("--max-repeat", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=cmd_anneal_mix)


def main(argv: list[str] | None = None) -> int:
    return standalone_main(register, argv)


if __name__ == "__main__":
    sys.exit(main())
