"""The stage contract: a small class with one method to implement.

Four kinds, by what the subclass implements:

- :class:`MapStage`     ``map(record) -> record``
- :class:`FilterStage`  ``filter(record) -> None`` (keep) or ``"rule"`` (drop, reason ``name:rule``)
- :class:`FlatMapStage` ``flat_map(record) -> iterable of records``
- :class:`BatchStage`   ``process_batch(records) -> records`` (a record it rejects comes back with
  ``drop_reason`` set; it may also drop nothing and reorder nothing)

Every stage sees records in batches through :meth:`Stage.process`, which is what the runtime
calls. ``cpu_bound = True`` stages are pure functions of their input and configuration: the
runtime ships their batches to a process pool, so they must be picklable and keep no state
between batches. Stages that keep state across records (dedup indexes, down-sampling budgets)
set ``stateful = True``, run in the runtime's own process, and implement ``state_dict`` /
``load_state_dict`` so their state commits atomically with the sink and source offsets (this is
what makes resume exactly-once).

A record whose processing raises is not lost: :meth:`Stage.process` quarantines it with the
reason ``<stage>:error:<ExceptionType>`` and the batch goes on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from codekiln.stream.record import Record


class Stage:
    """Base of every stage. Subclasses implement one method of the kinds above."""

    #: Unique within a pipeline; used in drop reasons ``name:rule`` and metrics labels.
    name: ClassVar[str] = "stage"
    #: Pure and picklable: batches may run in a process pool.
    cpu_bound: ClassVar[bool] = False
    #: Keeps state across batches; runs in the runtime process and is checkpointed.
    stateful: ClassVar[bool] = False

    def process(self, batch: list[Record]) -> list[Record]:
        """Process one batch. Dropped records come back with ``drop_reason`` set."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint (stateful stages only). Must be JSON- or pickle-serialisable."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def finish(self) -> list[Record]:
        """Called once at end of stream; may emit records held back (e.g. a batch window)."""
        return []

    def report(self) -> dict[str, Any]:
        """Stage-specific figures for the run report (e.g. duplicate cluster sizes)."""
        return {}

    def _quarantine(self, record: Record, exc: BaseException) -> Record:
        record.drop_reason = f"{self.name}:error:{type(exc).__name__}"
        record.meta["error"] = str(exc)[:500]
        return record


class MapStage(Stage):
    def map(self, record: Record) -> Record:
        raise NotImplementedError

    def process(self, batch: list[Record]) -> list[Record]:
        out = []
        for record in batch:
            try:
                out.append(self.map(record))
            except Exception as exc:  # noqa: BLE001 - quarantine, the run goes on
                out.append(self._quarantine(record, exc))
        return out


class FilterStage(Stage):
    def filter(self, record: Record) -> str | None:
        """``None`` keeps the record; a rule name drops it with reason ``<stage>:<rule>``."""
        raise NotImplementedError

    def process(self, batch: list[Record]) -> list[Record]:
        for record in batch:
            try:
                rule = self.filter(record)
            except Exception as exc:  # noqa: BLE001 - quarantine, the run goes on
                self._quarantine(record, exc)
                continue
            if rule is not None:
                record.drop_reason = f"{self.name}:{rule}"
        return batch


class FlatMapStage(Stage):
    def flat_map(self, record: Record) -> Iterable[Record]:
        raise NotImplementedError

    def process(self, batch: list[Record]) -> list[Record]:
        out: list[Record] = []
        for record in batch:
            try:
                out.extend(self.flat_map(record))
            except Exception as exc:  # noqa: BLE001 - quarantine, the run goes on
                out.append(self._quarantine(record, exc))
        return out


class BatchStage(Stage):
    def process_batch(self, batch: list[Record]) -> list[Record]:
        raise NotImplementedError

    def process(self, batch: list[Record]) -> list[Record]:
        return self.process_batch(batch)
