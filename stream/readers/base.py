"""What every reader shares: positions, the input budget, quarantine records.

A reader is a synchronous iterator of ``(position, record)``. The runtime drives it from a
worker thread, a batch at a time, so file I/O never blocks the event loop. ``position`` is a
tuple of ints that only grows; resuming with ``after=position`` yields exactly the items that
followed it, which is what makes resume exactly-once. A record the reader cannot use (binary,
non-UTF-8, oversize, empty, unreadable, malformed) is yielded with ``drop_reason`` set to
``reader:<rule>``: it is counted and written to the rejects sink, never silently skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from codekiln.stream.record import Record, record_id

Position = tuple[int, ...]
Item = tuple[Position, Record]

#: The stage name in drop reasons of records quarantined while reading.
READER = "reader"


class Reader(Protocol):
    def items(self, after: Position | None, budget: Budget) -> Iterator[Item]:
        """Items after ``after`` (all of them when ``None``), in a fixed order."""
        ...


@dataclass
class Budget:
    """The optional caps on how much input a run admits (``--max-files``, ``--max-bytes``).

    Part of the checkpointed source state, so a resumed run stops exactly where an
    uninterrupted one would.
    """

    max_files: int | None = None
    max_bytes: int | None = None
    files: int = 0
    bytes: int = 0
    exhausted: bool = False
    #: Files seen but not read because a cap was reached (reported, not rejected).
    not_read: int = 0

    def admit(self, size: int) -> bool:
        if self.exhausted:
            return False
        if (self.max_files is not None and self.files + 1 > self.max_files) or (
            self.max_bytes is not None and self.bytes + size > self.max_bytes
        ):
            self.exhausted = True
            return False
        self.files += 1
        self.bytes += size
        return True

    def state(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "exhausted": self.exhausted,
            "not_read": self.not_read,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.files = int(state["files"])
        self.bytes = int(state["bytes"])
        self.exhausted = bool(state["exhausted"])
        self.not_read = int(state["not_read"])


def reject(
    source: str, key: str, rule: str, *, path: str = "", repo: str = "", text: str = "", **meta: Any
) -> Record:
    """A quarantined input item, with the same stable id it would have had if readable."""
    return Record(
        id=record_id(source, key),
        text=text,
        path=path,
        repo=repo,
        source=source,
        meta=meta,
        drop_reason=f"{READER}:{rule}",
    )
