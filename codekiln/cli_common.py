"""What the five CLIs share, so they speak one way (docs/cli.md).

- Exit codes, ``--help`` with defaults (:class:`CommandParser`), one-line errors whose
  traceback goes to a log file (:func:`internal_error`, :func:`log_exception`) and the quiet end
  on a closed stdout (:func:`quiet_on_closed_stdout`) come from :mod:`codekiln.sandbox.cli_base`
  and are re-exported here: the sandbox deploys alone and imports nothing of codekiln, so the
  one copy all five CLIs use lives there. :data:`EXIT_OK` 0, :data:`EXIT_FAILURE` 1 (the work
  failed), :data:`EXIT_USAGE` 2 (bad command line, config, missing input or a refused token),
  :data:`EXIT_INTERRUPTED` 130 (Ctrl-C, state kept for a resume), :data:`EXIT_BROKEN_PIPE` 141
  (the reader of stdout went away, e.g. ``| head``: no message, as a tool killed by SIGPIPE).
- Secrets never on the command line: :func:`read_secret` takes ``--X-file PATH``, else the
  ``*_FILE`` variable naming a file, else the variable holding the value;
  :func:`add_sandbox_args` declares ``--sandbox-url`` and ``--sandbox-token-file`` for every CLI
  that talks to the sandbox.
- :func:`check_sandbox` proves a sandbox URL and token work before any work starts.
- :func:`default_data_dir` and :func:`add_data_dir_arg`: the benchmark files' folder.
- :func:`from_args` builds a frozen config from the parsed flags named like its fields.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from codekiln.sandbox.cli_base import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandParser,
    DefaultsHelpFormatter,
    InputNotFound,
    input_not_found,
    internal_error,
    log_dir,
    log_exception,
    quiet_on_closed_stdout,
    stdout_closed,
)

__all__ = [
    "DATA_DIR_ENV",
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "SANDBOX_TOKEN_ENV",
    "SANDBOX_TOKEN_FILE_ENV",
    "SANDBOX_URL_ENV",
    "CommandParser",
    "DefaultsHelpFormatter",
    "InputNotFound",
    "SecretError",
    "add_data_dir_arg",
    "add_sandbox_args",
    "check_sandbox",
    "default_data_dir",
    "from_args",
    "input_not_found",
    "internal_error",
    "log_dir",
    "log_exception",
    "quiet_on_closed_stdout",
    "read_secret",
    "sandbox_token",
    "stdout_closed",
]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Config = TypeVar("Config", bound="DataclassInstance")

SANDBOX_TOKEN_FILE_ENV = "CODEKILN_SANDBOX_TOKEN_FILE"
SANDBOX_TOKEN_ENV = "CODEKILN_SANDBOX_TOKEN"
SANDBOX_URL_ENV = "CODEKILN_SANDBOX_URL"


class SecretError(ValueError):
    """A secret's file cannot be read, or is empty."""


def read_secret(
    path: Path | None, *, file_env: str, value_env: str, environ: Mapping[str, str]
) -> str | None:
    """A secret from ``path``, else the file ``$file_env`` names, else ``$value_env``; or None."""
    if path is None and environ.get(file_env):
        path = Path(environ[file_env])
    if path is not None:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SecretError(f"cannot read the secret file {path}: {why}") from exc
        if not value:
            raise SecretError(f"the secret file {path} is empty")
        return value
    return environ.get(value_env) or None


def sandbox_token(path: Path | None, environ: Mapping[str, str]) -> str | None:
    """The sandbox token: ``--sandbox-token-file``, $CODEKILN_SANDBOX_TOKEN_FILE, or
    $CODEKILN_SANDBOX_TOKEN."""
    return read_secret(
        path, file_env=SANDBOX_TOKEN_FILE_ENV, value_env=SANDBOX_TOKEN_ENV, environ=environ
    )


def add_sandbox_args(
    parser: argparse.ArgumentParser, *, url_default: str = f"${SANDBOX_URL_ENV}"
) -> None:
    """``--sandbox-url`` (``url_default`` says where it comes from when not given) and
    ``--sandbox-token-file``: a file, never the token itself (:func:`sandbox_token` reads it)."""
    parser.add_argument("--sandbox-url", help=f"sandbox service (default: {url_default})")
    parser.add_argument(
        "--sandbox-token-file",
        type=Path,
        help=f"file holding the sandbox's token (default: ${SANDBOX_TOKEN_FILE_ENV}, else the "
        f"token itself in ${SANDBOX_TOKEN_ENV})",
    )


async def check_sandbox(client: Any, url: str) -> str | None:
    """None when the sandbox at ``url`` runs a trivial program for this token, else one line.

    ``/healthz`` needs no token, so it proves nothing about the token: this sends one real
    run (``pass`` in Python), refused with 401 for a wrong token.
    """
    from codekiln.sandbox.client import RunRequest
    from codekiln.sandbox.errors import AuthError, SandboxError

    try:
        result = await client.run(RunRequest(language="python", code="pass\n", timeout_s=10.0))
    except AuthError:
        return (
            f"the sandbox at {url} refused the token (HTTP 401): pass --sandbox-token-file "
            f"FILE or set {SANDBOX_TOKEN_FILE_ENV} / {SANDBOX_TOKEN_ENV} to its token"
        )
    except SandboxError as exc:
        return f"the sandbox at {url} is not usable: {exc}"
    if result.status != "passed":
        why = result.reason or result.stderr.strip()[-200:] or result.status
        return f"the sandbox at {url} cannot run a trivial Python program: {why}"
    return None


DATA_DIR_ENV = "CODEKILN_DATA_DIR"


def add_data_dir_arg(
    parser: argparse.ArgumentParser, *, default: Path | None = None, first: str = ""
) -> None:
    """``--data-dir``, the benchmark files; ``first`` names a source tried before
    :func:`default_data_dir`'s (``default``: the folder already resolved at parse time)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        help=f"benchmark files (default: {first}${DATA_DIR_ENV}, else ../shared/data)",
    )


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """The benchmark data folder: ``$CODEKILN_DATA_DIR``, else ``../shared/data`` (README).

    ``..`` is the folder above the checkout when codekiln runs from one (as the Makefile sets
    it), else above the working directory.
    """
    value = environ.get(DATA_DIR_ENV)
    if value:
        return Path(value)
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout.parent / "shared" / "data"
    return Path("..", "shared", "data").resolve()


def from_args(cls: type[Config], args: argparse.Namespace, **given: Any) -> Config:
    """``cls`` (a dataclass) from the parsed flags named like its fields, ``given`` for the rest.

    A field in ``given`` takes that value (a flag of another name, a computed value); every
    other field takes the flag of its own name (``--memory-mb`` for ``memory_mb``), or keeps its
    default where the command has no such flag. A field the dataclass requires and nobody gives
    is the constructor's ``TypeError``: a bug, never a user error.
    tests/contract/test_cli_flags.py gives every flag of the commands that use this a value of
    its own and checks that it lands in its field.
    """
    taken = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if f.init and f.name not in given and hasattr(args, f.name)
    }
    return cls(**taken, **given)
