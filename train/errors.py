"""Errors of ``codekiln.train``.

::

    TrainError                  root: everything this component raises on purpose
    ├── ConfigError             a config that cannot run (bad batch split, unknown preset, ...)
    ├── DataError               corpus or tokenizer problems (missing tokenizer, no shards, ...)
    ├── CheckpointError         a checkpoint that cannot be written or resumed
    ├── ManifestError           a Kubernetes object that does not validate, a kustomization we
    │                           cannot render
    └── LaunchError             submitting or watching a job failed (API errors wrapped here)

Every message names the field or path at fault so a user can fix it before anything starts.
"""

from __future__ import annotations


class TrainError(Exception):
    """Root of the training component's errors."""


class ConfigError(TrainError):
    """The configuration asks for something that cannot run."""


class DataError(TrainError):
    """The corpus or the tokenizer cannot be used."""


class CheckpointError(TrainError):
    """A checkpoint cannot be written or read back."""


class ManifestError(TrainError):
    """A Kubernetes manifest is invalid or cannot be rendered."""


class LaunchError(TrainError):
    """A job could not be submitted or watched."""
