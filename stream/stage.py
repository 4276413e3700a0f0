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
reason ``<stage>:error:<ExceptionType>`` and the batch goes on. When a :class:`BatchStage`'s
``process_batch`` raises, the batch is re-run record by record to isolate the bad record(s); so
``process_batch`` must not half-update state before raising (or must handle its own errors).
An exception that escapes :meth:`Stage.process` itself, :meth:`Stage.finish`,
:meth:`Stage.state_dict` or :meth:`Stage.load_state_dict` is a crash: the run stops with an error
naming the stage, and resumes from the last checkpoint when started again.

Scope: what a stage must see to decide, declared by the stage (:meth:`Stage.scope`) and read by
every planner (the local runtime places stages by it, the Ray executor cuts its plan by it; no
planner checks concrete classes):

- ``record`` (:data:`RECORD`): each record alone, no state; runs anywhere, in any grouping.
- ``shard`` (:data:`SHARD`): each record alone, with counters as its only state; may run per
  shard from zeroed counters, the shards' states merged by the stage
  (:meth:`Stage.merge_states`, counters summed by default) and loaded into one instance.
- ``stream`` (:data:`STREAM`): every record before it, in input order (a byte budget): one
  instance sees the whole stream.
- ``global`` (:data:`GLOBAL`): the whole corpus at once, through a global step that merges
  per-shard partial state (dedup); :attr:`Stage.global_step` names it.

The default follows ``stateful``: ``record`` without state, ``stream`` with it.

Lifecycle, as the runtime drives it::

    cls.preload()                     # pool stages, in the CLI process, before it forks them
    stage = cls(**options)            # options come from the config file, validated first
    stage.open(work_dir)              # once, before anything else; work_dir is per stage
    stage.load_state_dict(state)      # only on resume, checkpointed stages (see Scope)
    stage.process(batch) ...          # batches in input order, one at a time per stage
    stage.take_stats()                # cpu_bound, in the pool worker, after each batch;
    stage.absorb_stats(stats)         #   its result, in the runtime process's copy
    stage.state_dict()                # at each checkpoint, between two batches
    stage.finish()                    # once, at end of stream; records it returns flow on
    stage.report()                    # once, after finish, for report.md and manifest.json

A sharded executor (Ray) runs ``record`` and ``shard`` stages per shard and, for the report,
loads ``stage.merge_states(each shard's state_dict())`` into one instance.

Rules for stateful stages (what makes ``kill -9`` then resume exactly-once):

- Everything that influences future output must be in ``state_dict()``: indexes, budgets,
  counters that ``report()`` shows, **and records held back** (a stage that keeps records to
  emit them later from ``process`` or ``finish`` must put them in its state). A stage that holds
  records across batches must therefore set ``stateful = True``.
- ``state_dict()`` is pickled at once, so returning live objects is fine; the stage may keep
  mutating them after the call.
- State too big to pickle at every checkpoint may live in spill files under ``work_dir``; the
  state dict then names those files. A file named by a returned state must never change
  afterwards (write new files, e.g. with the checkpoint count in the name), because a resume
  loads that older state together with those files. Deleting files that no state names any
  more is the stage's business.
- The runtime checkpoints every ``runtime.checkpoint_every_records`` source items, so the
  output of a resumed run is identical to that of an uninterrupted run, provided ``process``
  is deterministic given its state and input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

from codekiln.stream.record import Record

Scope = Literal["record", "shard", "stream", "global"]
RECORD: Scope = "record"
SHARD: Scope = "shard"
STREAM: Scope = "stream"
GLOBAL: Scope = "global"


class Stage:
    """Base of every stage. Subclasses implement one method of the kinds above."""

    #: Unique within a pipeline; used in drop reasons ``name:rule`` and metrics labels.
    name: ClassVar[str] = "stage"
    #: Pure and picklable: batches may run in a process pool.
    cpu_bound: ClassVar[bool] = False
    #: Keeps state across batches; runs in the runtime process and is checkpointed.
    stateful: ClassVar[bool] = False
    #: A ``global`` stage's step, by the name executors know it by (``"exact"``, ``"fuzzy"``).
    global_step: ClassVar[str | None] = None

    def scope(self) -> Scope:
        """What this stage must see to decide (see the module docstring); may depend on the
        stage's options (a budget in bytes needs the stream before it)."""
        return STREAM if self.stateful else RECORD

    @classmethod
    def preload(cls) -> None:
        """Load the read-only data every instance of the class shares (lookup tables, compiled
        extensions), ahead of the first batch.

        The CLI calls it for its pool stages before it forks the pool's workers, so that they
        inherit the data instead of each loading it again on its first batch (on the run's
        critical path, once per worker). It runs before any stage is built and must not start
        threads. A failure here is ignored: building the stage reports it.
        """

    def open(self, work_dir: Path) -> None:
        """Called once before the first batch; ``work_dir`` is this stage's own folder for
        spill files, kept across resumes of the same run (created by the runtime)."""

    def process(self, batch: list[Record]) -> list[Record]:
        """Process one batch. Dropped records come back with ``drop_reason`` set."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint (stateful stages; for cpu_bound stages, the absorbed counters).
        Must be JSON- or pickle-serialisable."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def merge_states(self, states: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """The state of the whole stream from the states of its shards, in input order (a
        ``shard``-scope stage, or a pool stage's counters, run per shard by a sharded
        executor). By default counters add up: numbers are summed, mappings merged by key."""
        total: dict[str, Any] = {}
        for state in states:
            total = sum_counters(total, state)
        return total

    def take_stats(self) -> dict[str, Any] | None:
        """Counters gathered since the last call, then forgotten (``cpu_bound`` stages).

        A worker's copy of a pool stage cannot report to the runtime process by itself: the
        runtime calls this in the worker after every batch and passes the result, in input
        order, to :meth:`absorb_stats` of the stage's copy in the runtime process. That copy's
        ``state_dict()`` is checkpointed (for ``cpu_bound`` stages too), so counters shown by
        ``report()`` stay exact across a ``kill -9`` and resume. ``None``: nothing to pass.
        """
        return None

    def absorb_stats(self, stats: dict[str, Any]) -> None:
        """Add what a worker's :meth:`take_stats` returned (runtime process copy)."""

    def finish(self) -> Iterable[Record]:
        """Called once at end of stream; may emit records held back (e.g. a batch window).

        A list, or any iterable of records (e.g. a generator reading them back from spill
        files): the runtime consumes it in batches, so it need not fit in memory at once.
        """
        return []

    def report(self) -> dict[str, Any]:
        """Stage-specific figures for the run report (e.g. duplicate cluster sizes)."""
        return {}

    def _quarantine(self, record: Record, exc: BaseException) -> Record:
        record.drop_reason = f"{self.name}:error:{type(exc).__name__}"
        record.meta["error"] = str(exc)[:500]
        return record

    def _each(
        self, batch: list[Record], records_of: Callable[[Record], Iterable[Record]]
    ) -> list[Record]:
        """``records_of(record)`` for every record of ``batch``, in order; a record for which
        it raises is quarantined in its place (what it yielded before raising is kept)."""
        out: list[Record] = []
        for record in batch:
            try:
                out.extend(records_of(record))
            except Exception as exc:
                out.append(self._quarantine(record, exc))
        return out


def sum_counters(total: Any, part: Any) -> Any:
    """Counters added up: numbers add, mappings merge by key (a value ``total`` lacks is taken
    from ``part``); anything else keeps ``total``'s."""
    if total is None:
        return part
    if isinstance(total, dict) and isinstance(part, dict):
        out = dict(total)
        for key, value in part.items():
            out[key] = sum_counters(out.get(key), value)
        return out
    if isinstance(total, int | float) and isinstance(part, int | float):
        return total + part
    return total


class MapStage(Stage):
    def map(self, record: Record) -> Record:
        raise NotImplementedError

    def process(self, batch: list[Record]) -> list[Record]:
        return self._each(batch, lambda record: (self.map(record),))


class FilterStage(Stage):
    def filter(self, record: Record) -> str | None:
        """``None`` keeps the record; a rule name drops it with reason ``<stage>:<rule>``."""
        raise NotImplementedError

    def process(self, batch: list[Record]) -> list[Record]:
        for record in batch:
            try:
                rule = self.filter(record)
            except Exception as exc:
                self._quarantine(record, exc)
                continue
            if rule is not None:
                record.drop_reason = f"{self.name}:{rule}"
        return batch


class FlatMapStage(Stage):
    def flat_map(self, record: Record) -> Iterable[Record]:
        raise NotImplementedError

    def process(self, batch: list[Record]) -> list[Record]:
        return self._each(batch, self.flat_map)


class BatchStage(Stage):
    def process_batch(self, batch: list[Record]) -> list[Record]:
        raise NotImplementedError

    def process(self, batch: list[Record]) -> list[Record]:
        try:
            return self.process_batch(batch)
        except Exception as exc:
            if len(batch) == 1:
                return [self._quarantine(batch[0], exc)]
        # Re-run one record at a time: only the records that raise on their own are
        # quarantined, the rest of the batch goes on.
        return self._each(batch, lambda record: self.process_batch([record]))
