"""A pool stage for tests/stream/runtime/test_rt_forked.py (``rt_forked_stages:<Class>``)."""

from __future__ import annotations

import os
from typing import ClassVar

from codekiln.stream.record import Record
from rt_stages import CpuDropStage


class ParentPidStage(CpuDropStage):
    """CpuDropStage that also records which process ran it and that process's parent."""

    name: ClassVar[str] = "parentpid"

    def filter(self, record: Record) -> str | None:
        record.meta["pid"] = os.getpid()
        record.meta["ppid"] = os.getppid()
        return super().filter(record)


#: Which process loaded PreloadedStage's shared data: set by preload(), or lazily by the first
#: batch of a process that has not loaded it (as LanguageStage's table would be).
_LOADED_IN: dict[str, int] = {}


class PreloadedStage(CpuDropStage):
    """CpuDropStage that records in which process its shared data was loaded."""

    name: ClassVar[str] = "preloaded"

    @classmethod
    def preload(cls) -> None:
        _LOADED_IN["pid"] = os.getpid()

    def filter(self, record: Record) -> str | None:
        record.meta["loaded_in"] = _LOADED_IN.setdefault("pid", os.getpid())
        record.meta["pid"] = os.getpid()
        return super().filter(record)
