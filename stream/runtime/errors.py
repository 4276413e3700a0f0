"""The stream runtime's exceptions: one root, decided by type, never by message text.

::

    StreamError
    ├── ConfigError        bad config file or option; raised before any work starts
    ├── InputError         no usable input at all (a fatal input problem, not a bad record)
    ├── StageCrashed       a stage failed outside per-record quarantine; the run stops
    ├── CheckpointError    the output directory holds an unreadable or foreign checkpoint
    └── SinkError          writing or committing output failed

A bad *record* is never an exception here: it is quarantined with a reason and counted.
"""

from __future__ import annotations


class StreamError(Exception):
    """Root of every error the stream runtime raises on purpose."""


class ConfigError(StreamError):
    """The config (file, flags or stage options) is invalid; the message is exact."""


class InputError(StreamError):
    """No usable input: every input path is missing, or an input format is unknown."""


class StageCrashed(StreamError):
    """A stage raised outside per-record processing (bug, dead worker, bad return value)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"stage {stage!r} crashed: {message}")
        self.stage = stage


class CheckpointError(StreamError):
    """The checkpoint in the output directory cannot be used for this run."""


class SinkError(StreamError):
    """Output could not be written or committed."""
