"""Stages for the Ray tests, importable by Ray workers as ``tests.stream.ray.ray_stages``
(Ray puts the driver's working directory, the repository root, on every worker's path)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

from codekiln.stream.record import Record
from codekiln.stream.stage import BatchStage


class SlowStage(BatchStage):
    """Passes records through after ``delay_s`` per batch; notes its worker's pid in
    ``pid_dir`` (so a test knows which process to kill)."""

    name: ClassVar[str] = "slow"

    def __init__(self, delay_s: float = 0.0, pid_dir: str = "") -> None:
        self.delay_s = delay_s
        self.pid_dir = pid_dir

    def process_batch(self, batch: list[Record]) -> list[Record]:
        if self.pid_dir:
            Path(self.pid_dir, str(os.getpid())).touch()
        time.sleep(self.delay_s)
        return batch
