"""Running one contributed subcommand module on its own (``python -m ...``, tests).

Modules listed in ``codekiln.stream.cli.SUBCOMMAND_MODULES`` expose ``register(subparsers)``;
``codekiln-stream`` mounts them all, and this runs one of them without the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codekiln.cli_common import CommandParser

Register = Callable[[Any], None]


def standalone_main(register: Register, argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="codekiln-stream")  # --help shows defaults, as codekiln-stream
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
