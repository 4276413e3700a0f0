"""What the five CLIs share, so they speak one way (docs/cli.md).

- Exit codes: :data:`EXIT_OK` 0, :data:`EXIT_FAILURE` 1 (the work failed), :data:`EXIT_USAGE` 2
  (bad command line, config, missing input or a refused token), 130 interrupted (Ctrl-C,
  state kept for a resume), :data:`EXIT_BROKEN_PIPE` 141 (the reader of stdout went away,
  e.g. ``| head``: no message, as a tool killed by SIGPIPE).
- Secrets never on the command line: :func:`read_secret` takes ``--X-file PATH``, else the
  ``*_FILE`` variable naming a file, else the variable holding the value.
- A user error is one line on stderr; the traceback goes to a log file
  (:func:`log_exception`), whose path the line names.
- :func:`check_sandbox` proves a sandbox URL and token work before any work starts.

``codekiln.sandbox`` does not import this module (it deploys alone).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DATA_DIR_ENV",
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "SANDBOX_TOKEN_ENV",
    "SANDBOX_TOKEN_FILE_ENV",
    "DefaultsHelpFormatter",
    "SecretError",
    "check_sandbox",
    "default_data_dir",
    "log_dir",
    "log_exception",
    "quiet_on_closed_stdout",
    "read_secret",
    "sandbox_token",
    "stdout_closed",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE, what ``set -o pipefail`` shows for ``seq 1 1000000 | head``.
EXIT_BROKEN_PIPE = 141

SANDBOX_TOKEN_FILE_ENV = "CODEKILN_SANDBOX_TOKEN_FILE"
SANDBOX_TOKEN_ENV = "CODEKILN_SANDBOX_TOKEN"


class SecretError(ValueError):
    """A secret's file cannot be read, or is empty."""


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with every option's default, options without a help text included."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        said = "default" in text.lower()  # the text already names its default
        # Identity, not ==: a default of 0 is shown, only None/False/SUPPRESS are not.
        if said or default is None or default is False or default is argparse.SUPPRESS:
            return text or None
        if default == []:
            return text or None
        if action.option_strings or action.nargs in ("?", "*"):
            text += " (default: %(default)s)"
        return text.strip()


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


def log_dir(environ: Mapping[str, str]) -> Path:
    """Where tracebacks go: $CODEKILN_LOG_DIR, else ~/.cache/codekiln/logs."""
    given = environ.get("CODEKILN_LOG_DIR")
    if given:
        return Path(given)
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codekiln" / "logs"


def log_exception(prog: str, exc: BaseException, environ: Mapping[str, str] | None = None) -> str:
    """Append ``exc``'s traceback to ``<log_dir>/<prog>.log``; the path, or why it failed."""
    folder = log_dir(os.environ if environ is None else environ)
    path = folder / f"{prog}.log"
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    text = "".join(traceback.format_exception(exc))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- {stamp} {prog} {' '.join(sys.argv[1:])}\n{text}\n")
    except OSError as err:
        return f"(the traceback could not be logged: {err})"
    return str(path)


def stdout_closed() -> int:
    """Point stdout at /dev/null (the interpreter's last flush would fail again) and return
    :data:`EXIT_BROKEN_PIPE`: the reader of our stdout went away, nothing more to say."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (a test's capture): nothing to redirect
        pass
    return EXIT_BROKEN_PIPE


def quiet_on_closed_stdout(main: Callable[..., int]) -> Callable[..., int]:
    """A CLI entry that ends quietly with :data:`EXIT_BROKEN_PIPE` when stdout's reader closes
    the pipe (``codekiln-train deepspeed-config ... | head``); stdout is flushed inside, so a
    buffered write that fails is caught too. The entry's own handlers re-raise
    BrokenPipeError (an OSError) for this wrapper."""

    @functools.wraps(main)
    def entry(*args: object, **kwargs: object) -> int:
        try:
            code = main(*args, **kwargs)
            sys.stdout.flush()
        except BrokenPipeError:
            return stdout_closed()
        return code

    return entry
