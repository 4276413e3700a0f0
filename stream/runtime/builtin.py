"""Stages that ship with the runtime itself (testing and benchmarking)."""

from __future__ import annotations

from typing import ClassVar

from codekiln.stream.record import Record
from codekiln.stream.stage import Stage


class NoopStage(Stage):
    """Passes every batch through unchanged: measures the runtime's own overhead."""

    name: ClassVar[str] = "noop"

    def process(self, batch: list[Record]) -> list[Record]:
        return batch
