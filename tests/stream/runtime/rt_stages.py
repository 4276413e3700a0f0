"""Stages used by the runtime tests (importable as ``rt_stages:<Class>`` from configs)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from codekiln.stream.record import Record
from codekiln.stream.stage import BatchStage, FilterStage, MapStage, Scope, Stage


class TagStage(MapStage):
    """Appends its tag to meta['trail'] (shows every record went through, in order)."""

    name: ClassVar[str] = "tag"

    def __init__(self, tag: str = "t") -> None:
        self.tag = tag

    def map(self, record: Record) -> Record:
        record.meta.setdefault("trail", []).append(self.tag)
        return record


class DropMarkedStage(FilterStage):
    """Drops texts containing ``marker`` with rule 'marked'; raises on texts containing 'boom'."""

    name: ClassVar[str] = "dropper"

    def __init__(self, marker: str = "DROP") -> None:
        self.marker = marker

    def filter(self, record: Record) -> str | None:
        if "boom" in record.text:
            raise ValueError("boom in text")
        return "marked" if self.marker in record.text else None


class CpuDropStage(DropMarkedStage):
    """The same filter, run in the process pool; optionally records the worker pid."""

    name: ClassVar[str] = "cpudrop"
    cpu_bound: ClassVar[bool] = True

    def __init__(self, marker: str = "DROP", record_pid: bool = False) -> None:
        super().__init__(marker)
        self.record_pid = record_pid

    def filter(self, record: Record) -> str | None:
        if self.record_pid:
            record.meta["pid"] = os.getpid()
        return super().filter(record)


class PoisonBatchStage(BatchStage):
    """A batch stage that raises for any batch holding a 'poison' record."""

    name: ClassVar[str] = "poison"

    def process_batch(self, batch: list[Record]) -> list[Record]:
        if any("poison" in r.text for r in batch):
            raise RuntimeError("poisoned batch")
        for r in batch:
            r.meta["seen_by_poison"] = True
        return batch


class CrashStage(Stage):
    """Raises from process() itself after ``after`` batches: a crashed stage."""

    name: ClassVar[str] = "crasher"

    def __init__(self, after: int = 0) -> None:
        self.after = after
        self.batches = 0

    def process(self, batch: list[Record]) -> list[Record]:
        self.batches += 1
        if self.batches > self.after:
            raise RuntimeError("disk on fire")
        return batch


class ExactDedupStage(Stage):
    """A stateful exact dedup (sha256 of text) with its index in state_dict."""

    name: ClassVar[str] = "dedup"
    stateful: ClassVar[bool] = True

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.dups = 0

    def process(self, batch: list[Record]) -> list[Record]:
        for r in batch:
            h = hashlib.sha256(r.text.encode()).hexdigest()
            if h in self.seen:
                r.drop_reason = "dedup:exact"
                self.dups += 1
            else:
                self.seen.add(h)
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"seen": sorted(self.seen), "dups": self.dups}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seen = set(state["seen"])
        self.dups = state["dups"]

    def report(self) -> dict[str, Any]:
        return {"duplicates": self.dups, "unique": len(self.seen)}


class HoldStage(Stage):
    """Holds every third record until finish() (held records are part of its state)."""

    name: ClassVar[str] = "hold"
    stateful: ClassVar[bool] = True

    def __init__(self) -> None:
        self.held: list[Record] = []
        self.n = 0

    def process(self, batch: list[Record]) -> list[Record]:
        out = []
        for r in batch:
            self.n += 1
            if self.n % 3 == 0:
                self.held.append(r)
            else:
                out.append(r)
        return out

    def finish(self) -> list[Record]:
        held, self.held = self.held, []
        return held

    def state_dict(self) -> dict[str, Any]:
        return {"held": [r.to_json() for r in self.held], "n": self.n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.held = [Record.from_json(o) for o in state["held"]]
        self.n = state["n"]


class SlowStage(Stage):
    """Sleeps per batch (in its worker thread), so a subprocess can be killed mid-run."""

    name: ClassVar[str] = "slow"

    def __init__(self, delay_s: float = 0.01) -> None:
        self.delay_s = delay_s

    def process(self, batch: list[Record]) -> list[Record]:
        time.sleep(self.delay_s)
        return batch


class CrashOnceStage(Stage):
    """Crashes at the record numbered ``at`` while ``flag_file`` exists (and removes it)."""

    name: ClassVar[str] = "crash_once"

    def __init__(self, flag_file: str, at: int = 50) -> None:
        self.flag = Path(flag_file)
        self.at = at
        self.n = 0

    def process(self, batch: list[Record]) -> list[Record]:
        self.n += len(batch)
        if self.n >= self.at and self.flag.exists():
            self.flag.unlink()
            raise RuntimeError("simulated crash")
        return batch


class GateStage(Stage):
    """Holds every record until finish(), which streams them back through a generator."""

    name: ClassVar[str] = "gate"
    stateful: ClassVar[bool] = True

    def __init__(self) -> None:
        self.held: list[Record] = []

    def process(self, batch: list[Record]) -> list[Record]:
        self.held.extend(batch)
        return []

    def finish(self) -> Iterator[Record]:
        held, self.held = self.held, []
        yield from held

    def state_dict(self) -> dict[str, Any]:
        return {"held": [r.to_json() for r in self.held]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.held = [Record.from_json(o) for o in state["held"]]


class DieStage(MapStage):
    """A pool stage whose worker process exits on a record holding 'DIE' (a dead worker)."""

    name: ClassVar[str] = "die"
    cpu_bound: ClassVar[bool] = True

    def map(self, record: Record) -> Record:
        if "DIE" in record.text:
            os._exit(3)
        return record


class ScopedCounterStage(BatchStage):
    """A ``cpu_bound`` stage, not ``stateful``, whose scope is an option: counts the records it
    sees, and the processes it saw them in, in its own attributes (its state)."""

    name: ClassVar[str] = "scoped"
    cpu_bound: ClassVar[bool] = True

    def __init__(self, scope: Scope = "record") -> None:
        self.declared: Scope = scope
        self.seen = 0
        self.pids: set[int] = set()

    def scope(self) -> Scope:
        return self.declared

    def process_batch(self, batch: list[Record]) -> list[Record]:
        self.seen += len(batch)
        self.pids.add(os.getpid())
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}
