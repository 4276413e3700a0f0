"""How every codekiln command line speaks: exit codes, ``--help`` with defaults, one-line errors
whose traceback goes to a log file, a quiet end when stdout's reader goes away (docs/cli.md).

It lives in the sandbox because the sandbox deploys alone and imports nothing else of codekiln:
``codekiln-sandbox`` uses it from here, and :mod:`codekiln.cli_common` re-exports it for the
other four CLIs, so all five share one copy. Standard library only.

- Exit codes: :data:`EXIT_OK` 0, :data:`EXIT_FAILURE` 1 (the work failed), :data:`EXIT_USAGE` 2
  (bad command line, config, missing input or a refused token), :data:`EXIT_INTERRUPTED` 130
  (Ctrl-C, state kept for a resume), :data:`EXIT_BROKEN_PIPE` 141 (the reader of stdout went
  away, e.g. ``| head``: no message, as a tool killed by SIGPIPE).
- :class:`CommandParser`: a parser whose ``--help``, and its subcommands', shows every default.
- :func:`internal_error`: an unexpected exception is one line on stderr naming the log file its
  traceback went to (:func:`log_exception`).
- :class:`InputNotFound`: a path the user gave does not exist; every CLI answers it with
  :func:`input_not_found` (one line, :data:`EXIT_USAGE`).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import functools
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandParser",
    "DefaultsHelpFormatter",
    "InputNotFound",
    "input_not_found",
    "internal_error",
    "log_dir",
    "log_exception",
    "quiet_on_closed_stdout",
    "stdout_closed",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE, what ``set -o pipefail`` shows for ``seq 1 1000000 | head``.
EXIT_BROKEN_PIPE = 141


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with every option's default, options without a help text included."""

    def add_argument(self, action: argparse.Action) -> None:
        # argparse writes no help line at all for an action without a help text, so the
        # default of such an option would never show: give it a copy whose help is its default.
        if action.help is None and action.option_strings and _shown(action.default):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        super().add_argument(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        said = "default" in text.lower()  # the text already names its default
        if said or not _shown(default):
            return text or None
        if action.option_strings or action.nargs in ("?", "*"):
            text += " (default: %(default)s)"
        return text.strip()


def _shown(default: object) -> bool:
    """Whether ``--help`` shows a default: identity, not ==, so 0 is shown; None, False,
    SUPPRESS and an empty list (nothing given) are not."""
    if default is None or default is False or default is argparse.SUPPRESS:
        return False
    return not (isinstance(default, list) and not default)


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose ``--help`` shows every default (:class:`DefaultsHelpFormatter`
    unless ``formatter_class`` is given). ``add_subparsers`` makes its subcommands' parsers of
    the parser's own class, so one of these at the top gives every subcommand the same help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


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


def internal_error(prog: str, exc: BaseException) -> int:
    """A bug, not a user error: log ``exc``'s traceback, say so in one line on stderr naming the
    log file, and return :data:`EXIT_FAILURE` (the last handler of every CLI's ``main``)."""
    where = log_exception(prog, exc)
    print(
        f"{prog}: internal error: {type(exc).__name__}: {exc} (traceback: {where})",
        file=sys.stderr,
    )
    return EXIT_FAILURE


class InputNotFound(FileNotFoundError):
    """A path the user gave (an input, a samples, results, benchmark or token file) does not
    exist: a usage error. A component's own error for it derives from this too, so every CLI
    answers it alike (:func:`input_not_found`); other FileNotFoundErrors stay internal errors."""


def input_not_found(prog: str, exc: InputNotFound) -> int:
    """Say ``exc`` (it names the path) in one line on stderr; return :data:`EXIT_USAGE`."""
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return EXIT_USAGE


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
