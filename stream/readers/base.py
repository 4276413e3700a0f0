"""What every reader shares: positions, the input budget, quarantine records.

A reader is a synchronous iterator of ``(position, record)``. The runtime drives it from a
worker thread, a batch at a time, so file I/O never blocks the event loop. ``position`` is a
tuple of ints that only grows; resuming with ``after=position`` yields exactly the items that
followed it, which is what makes resume exactly-once. A record the reader cannot use (binary,
non-UTF-8, oversize, empty, unreadable, malformed) is yielded with ``drop_reason`` set to
``reader:<rule>``: it is counted and written to the rejects sink, never silently skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any, Generic, NotRequired, Protocol, TypedDict, TypeVar, Unpack

from codekiln.stream.record import Record, record_id

Position = tuple[int, ...]
Item = tuple[Position, Record]

#: The stage name in drop reasons of records quarantined while reading.
READER = "reader"


class Reader(Protocol):
    def items(self, after: Position | None, budget: Budget) -> Iterator[Item]:
        """Items after ``after`` (all of them when ``None``), in a fixed order."""
        ...

    def input_bytes(self, stop: Event | None = None) -> int | None:
        """The bytes on disk of everything this reader reads, measured once (a stat per
        file); ``None`` when ``stop`` was set before the measure was done. Safe in a thread
        beside :meth:`items` (it opens nothing)."""
        ...

    def consumed_bytes(self) -> int:
        """How many of :meth:`input_bytes` the reader is past (the files before a resume
        point included); about the size of the input once :meth:`items` ended. Called from
        the thread that reads :meth:`items`, between two items (per batch, not per record)."""
        ...


#: The checkpointed fields of :class:`Budget`, each with its type.
_BUDGET_STATE: dict[str, type] = {"files": int, "bytes": int, "exhausted": bool, "not_read": int}


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
        """The counts a checkpoint holds (the caps come from the config)."""
        return {name: getattr(self, name) for name in _BUDGET_STATE}

    def load(self, state: dict[str, Any]) -> None:
        for name, kind in _BUDGET_STATE.items():
            setattr(self, name, kind(state[name]))


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


#: Shard fields a record takes by name; any other key of a shard's object lands in ``meta``.
RECORD_FIELDS = ("lang", "path", "repo", "source", "meta")


class ShardFields(TypedDict):
    """The keyword arguments every shard reader takes (see :class:`ShardReader`)."""

    text_key: str
    id_key: str
    source: NotRequired[str | None]


#: What a shard reader's :meth:`ShardReader.open_shard` gives (a file handle, a Parquet file).
Opened = TypeVar("Opened")


class ShardReader(Generic[Opened]):
    """What the JSONL and Parquet readers share: a list of shard files below ``root``, read in
    order, positions ``(file index, line or row)``, the quarantine of a shard that is empty or
    cannot be opened (one reject keyed ``<shard>:0``), and the rules that turn one object of a
    shard into a record (``text_key``, ``id_key``, the other keys into ``meta``).

    A subclass opens a shard (:meth:`open_shard`), names the failures that quarantine it
    (:meth:`open_failure`) and reads the opened shard (:meth:`read_opened`).

    Progress (:meth:`consumed_bytes`): the sizes of the shards done, plus the size of the open
    one times the fraction of it read (:meth:`read_fraction`, asked once per batch).
    """

    def __init__(self, files: list[Path], root: Path, **fields: Unpack[ShardFields]) -> None:
        self.files = files
        self.root = root
        self.text_key = fields["text_key"]
        self.id_key = fields["id_key"]
        self.source = fields.get("source") or root.resolve().name
        #: The sizes of the shards before the current one (progress, see consumed_bytes).
        self._done_bytes = 0
        #: (size of the shard being read, the fraction of it read so far), None between shards.
        self._current: tuple[int, Callable[[], float]] | None = None

    def input_bytes(self, stop: Event | None = None) -> int | None:
        total = 0
        for path in self.files:
            if stop is not None and stop.is_set():
                return None
            total += _size(path)
        return total

    def consumed_bytes(self) -> int:
        current = self._current
        if current is None:
            return self._done_bytes
        size, fraction = current
        try:
            done = fraction()
        except (OSError, ValueError):  # closed (a corrupt shard's reject follows its close)
            done = 1.0
        return self._done_bytes + int(size * min(max(done, 0.0), 1.0))

    def shard_name(self, path: Path) -> str:
        """The shard's name in keys and ``path``: relative to the input folder."""
        return path.name if path == self.root else path.relative_to(self.root).as_posix()

    def items(self, after: Position | None, budget: Budget) -> Iterator[Item]:
        first_file, after_item = (after[0], after[1]) if after else (0, -1)
        self._done_bytes, self._current = 0, None
        for index, path in enumerate(self.files):
            if index < first_file:
                self._done_bytes += _size(path)  # read before the resume point
                continue
            skip_to = after_item if index == first_file else -1
            for number, record in self.read_file(path, skip_to, budget):
                yield (index, number), record
            if budget.exhausted:
                budget.not_read += len(self.files) - index - 1
                return

    def read_file(self, path: Path, skip_to: int, budget: Budget) -> Iterator[tuple[int, Record]]:
        """``(line or row number, record)`` of one shard, those numbered above ``skip_to``."""
        shard = self.shard_name(path)
        size = 0
        try:
            size = path.stat().st_size
            if size == 0:
                if skip_to < 0:
                    yield 0, self.shard_reject(shard, "empty")
                return
            opened = self.open_shard(path)
        except Exception as exc:
            failure = self.open_failure(exc)
            if failure is None:
                raise
            self._done_bytes += size  # quarantined whole: read as far as progress goes
            if skip_to < 0:
                rule, error = failure
                yield 0, self.shard_reject(shard, rule, error=error)
            return
        self._current = (size, self.read_fraction(opened, size))
        yield from self.read_opened(shard, opened, skip_to, budget)
        self._current = None
        self._done_bytes += size

    def shard_reject(self, shard: str, rule: str, **meta: Any) -> Record:
        """The one reject of a whole shard."""
        return reject(self.source, f"{shard}:0", rule, path=shard, **meta)

    def open_shard(self, path: Path) -> Opened:
        raise NotImplementedError

    def read_fraction(self, opened: Opened, size: int) -> Callable[[], float]:
        """How much of the opened shard (``size`` bytes, more than 0) :meth:`read_opened` is
        past, from 0 to 1; cheap (it is called once per batch), from the thread that reads."""
        raise NotImplementedError

    def open_failure(self, exc: Exception) -> tuple[str, str | None] | None:
        """``(rule, error)`` for an exception of :meth:`open_shard` that quarantines the shard;
        ``None`` lets it through."""
        raise NotImplementedError

    def read_opened(
        self, shard: str, opened: Opened, skip_to: int, budget: Budget
    ) -> Iterator[tuple[int, Record]]:
        raise NotImplementedError

    def shard_record(
        self, key: str, obj: dict[str, Any], text: str, meta: dict[str, Any], *, keep_null: bool
    ) -> Record:
        """The record of one shard object: its id from ``id_key`` (else derived from ``key``),
        the known fields, and every other key added to ``meta`` (``None`` values too when
        ``keep_null``)."""
        raw_id = obj.get(self.id_key)
        rid = (
            str(raw_id)
            if isinstance(raw_id, str | int) and raw_id != ""
            else record_id(self.source, key)
        )
        for k, v in obj.items():
            if k not in (self.text_key, self.id_key, *RECORD_FIELDS) and (
                keep_null or v is not None
            ):
                meta.setdefault(k, v)
        return Record(
            id=rid,
            text=text,
            lang=str(obj.get("lang") or ""),
            path=str(obj.get("path") or ""),
            repo=str(obj.get("repo") or ""),
            source=str(obj.get("source") or self.source),
            meta=meta,
        )


def _size(path: Path) -> int:
    """The size of a file on disk; 0 when it cannot be stat'ed (its reader says why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0
