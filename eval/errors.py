"""Exceptions of codekiln.eval.

EvalError                      root of everything this package raises
├── ConfigError                a setting or a command-line value is invalid; fatal
├── DatasetError               a benchmark file is missing, unreadable or not the expected
│   │                          release; fatal
│   └── DatasetNotFound        the benchmark file is not there (see --data-dir)
├── SampleError                a samples file cannot be read at all (bad records are
│   │                          quarantined instead, see results.Quarantine)
│   └── SamplesNotFound        the samples or results file given does not exist
├── ReferenceRunError         the canonical solution could not be run in the sandbox
└── BaselineError              a baselines table is malformed
Sandbox and LLM client errors are wrapped at the boundary (``raise EvalError(...) from exc``).
The two *NotFound errors are also codekiln.cli_common.InputNotFound: a usage error (exit 2), as
a missing input is for every CLI.
"""

from __future__ import annotations

from codekiln.cli_common import InputNotFound


class EvalError(Exception):
    """Root of every exception raised by codekiln.eval."""


class ConfigError(EvalError, ValueError):
    """An evaluation setting is invalid."""


class DatasetError(EvalError):
    """A benchmark data file is missing, unreadable or not what was expected."""


class SampleError(EvalError):
    """A samples file cannot be read."""


class DatasetNotFound(DatasetError, InputNotFound):
    """The benchmark file is not where --data-dir says."""


class SamplesNotFound(SampleError, InputNotFound):
    """The samples (or results) file given does not exist."""


class ReferenceRunError(EvalError):
    """The canonical solution could not be run in the sandbox to compute expected outputs."""


class BaselineError(EvalError):
    """The published-baselines table is malformed."""
