"""Exceptions of codekiln.eval.

EvalError                      root of everything this package raises
├── ConfigError                a setting or a command-line value is invalid; fatal
├── DatasetError               a benchmark file is missing, unreadable or not the expected
│                              release; fatal
├── SampleError                a samples file cannot be read at all (bad records are
│                              quarantined instead, see results.Quarantine)
├── ReferenceRunError         the canonical solution could not be run in the sandbox
└── BaselineError              a baselines table is malformed
Sandbox and LLM client errors are wrapped at the boundary (``raise EvalError(...) from exc``).
"""

from __future__ import annotations


class EvalError(Exception):
    """Root of every exception raised by codekiln.eval."""


class ConfigError(EvalError, ValueError):
    """An evaluation setting is invalid."""


class DatasetError(EvalError):
    """A benchmark data file is missing, unreadable or not what was expected."""


class SampleError(EvalError):
    """A samples file cannot be read."""


class ReferenceRunError(EvalError):
    """The canonical solution could not be run in the sandbox to compute expected outputs."""


class BaselineError(EvalError):
    """The published-baselines table is malformed."""
