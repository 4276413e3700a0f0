"""Stages for the Ray tests, importable by Ray workers as ``tests.stream.ray.ray_stages``
(Ray puts the driver's working directory, the repository root, on every worker's path)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar, NoReturn

from codekiln.stream.record import Record
from codekiln.stream.stage import BatchStage, MapStage


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


class Opaque(str):
    """A string a plugin keeps in meta that pickle refuses (as a handle's name might): JSON
    writes it as the string it is, but no spill file or shard file can hold it."""

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("Opaque cannot be pickled")


class Unhashable(str):
    """A text MinHash cannot shingle: its UTF-8 encoding fails (JSON writes it as it is)."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        raise UnicodeError("Unhashable has no bytes")


class HostileStage(MapStage):
    """Turns marked records hostile: a text containing ``unpicklable`` gets an
    :class:`Opaque` in meta, one containing ``unhashable`` an :class:`Unhashable` text."""

    name: ClassVar[str] = "hostile"

    def __init__(self, unpicklable: str = "UNPICKLABLE", unhashable: str = "UNHASHABLE") -> None:
        self.unpicklable = unpicklable
        self.unhashable = unhashable

    def map(self, record: Record) -> Record:
        if self.unpicklable in record.text:
            record.meta["handle"] = Opaque("handle-1")
        if self.unhashable in record.text:
            record.text = Unhashable(record.text)
        return record
