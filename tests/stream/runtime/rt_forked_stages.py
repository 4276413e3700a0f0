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
