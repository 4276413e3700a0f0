"""Exact dedup: SHA-256 of the content, one survivor per hash chosen by priority.

Design (why it looks like this):

- The survivor of a hash is the record with the smallest priority key
  (:mod:`codekiln.stream.dedup.priority`), never the first to arrive, so it can only be known at
  the end of the stream. Records are therefore held back and emitted by :meth:`finish`.
- Held records stay in memory up to ``memory_mb``; beyond it, and at every checkpoint, they are
  appended to one spill file in arrival order. An entry there is a fixed header (two lengths),
  the pickled small fields (id, lang, path, repo, source, meta) and the text's UTF-8 bytes as
  they were hashed: no serializer walks the text, and a batch is one ``writev``. A second,
  fixed-width file holds each entry's (SHA-256, offset): the index the end of the stream
  groups.
- The priority key is computed only at the end and only for hashes seen more than once: a
  unique hash's record survives whatever its key, and most hashes are unique.
- :meth:`finish` is a generator. It sorts the index by hash (numpy, a 64-bit prefix, the full
  digest checked), decides each cluster, then streams every record out in arrival order from
  the memory-mapped spill. Memory at the end, never the spilled texts: about 25 bytes per held
  record while sorting, 16 per record that has copies (its decision), and what was still held
  in memory (measured: 25 bytes per record without copies, 49 when half are copies).
- The checkpoint spills what is held in memory and records the committed length of the spill
  files (:class:`~.spill.Spill`): after ``kill -9`` the files are truncated back to it and the
  runtime replays the rest from the source, so nothing is held twice or lost. The files are
  append-only: the prefix a state names never changes, so any older state stays loadable too
  (the runtime's rule for spill files).

Duplicates leave as rejects with reason ``exact_dedup:duplicate`` and ``meta["duplicate_of"]``
(the survivor's id); every record gets ``meta["sha256"]``.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import numpy as np
from codekiln.stream.dedup.priority import DEFAULT_PRIORITY, parse_priority, sort_key
from codekiln.stream.dedup.spill import (
    HELD_HEADER,
    SpillingStage,
    held_fields,
    held_record,
    read_held,
    read_held_fields,
)
from codekiln.stream.record import Record

#: Index entry: raw SHA-256, offset of the entry in the records file.
_INDEX = struct.Struct("<32sQ")
_RECORDS = "records.bin"
_INDEX_FILE = "index.bin"
#: Bumped when the spill layout changes: a checkpoint of another layout is refused.
_FORMAT = 2
#: Bytes counted per record held in memory on top of its text and fields (objects, lists).
_OVERHEAD = 200


class _Held:
    """The held records at the end of the stream: the spill (memory-mapped index and records),
    then the entries still in memory, numbered together in arrival order."""

    def __init__(
        self, index: memoryview, records: memoryview, memory: list[tuple[bytes, bytes, bytes]]
    ) -> None:
        self._index, self._records, self._memory = index, records, memory
        self.spilled = len(index) // _INDEX.size

    def prefixes(self) -> np.ndarray[Any, np.dtype[np.uint64]]:
        """The first 64 bits of every hash, as a new array (the map stays unexported)."""
        spilled = np.frombuffer(self._index, dtype="<u8").reshape(-1, 5)[:, 0]  # 4 words, offset
        in_memory = np.frombuffer(b"".join(d for d, _, _ in self._memory), dtype="<u8")
        return np.concatenate([spilled, in_memory.reshape(-1, 4)[:, 0]])

    def digest(self, i: int) -> bytes:
        if i >= self.spilled:
            return self._memory[i - self.spilled][0]
        return bytes(self._index[i * _INDEX.size : i * _INDEX.size + 32])

    def fields(self, i: int) -> Record:
        """Record ``i`` without its text: enough for its id and priority key."""
        if i >= self.spilled:
            return held_record(pickle.loads(self._memory[i - self.spilled][1]), "")
        (at,) = struct.unpack_from("<Q", self._index, i * _INDEX.size + 32)
        return read_held_fields(self._records, at)

    def records(self) -> Iterator[Record]:
        yield from read_held(self._records)
        for _, fields, data in self._memory:
            yield held_record(pickle.loads(fields), str(data, "utf-8", "surrogatepass"))


def content_hash(text: str) -> str:
    """SHA-256 hex digest of the UTF-8 text (lone surrogates kept, never a crash)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Survivor:
    """The survivor of one hash as its candidates arrive in input order: the smallest priority
    key, the first on a tie (a strict ``<``), and the records behind the candidates.

    Shared by every executor: :meth:`ExactDedupStage.finish` offers each held record of a hash;
    the shard executor (:mod:`.exact_shards`) each record of a shard, then each shard's
    survivor with its count, in shard order (the first smallest key is the same in any
    grouping)."""

    __slots__ = ("count", "item", "key")

    def __init__(self, key: Any, item: Any, count: int = 1) -> None:
        self.key, self.item, self.count = key, item, count

    def offer(self, key: Any, item: Any, count: int = 1) -> None:
        self.count += count
        if key < self.key:
            self.key, self.item = key, item

    @classmethod
    def of(cls, candidates: Iterable[tuple[Any, Any]]) -> Survivor:
        """The survivor of (key, item) candidates, one record each, in input order."""
        it = iter(candidates)
        key, item = next(it)
        best = cls(key, item)
        for key, item in it:
            best.offer(key, item)
        return best


class ClusterTally:
    """What exact dedup's report says of its clusters: how many of each size, the records they
    drop, and the largest (size, survivor path, hash prefix), in report order (largest first,
    then by path, then by hash). Shared by every executor: the local finish adds each cluster,
    the shard executor each hash partition's, and merges the partitions' tallies."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.sizes: Counter[int] = Counter()
        #: (-size, survivor path, hash prefix): sorting gives report order.
        self._largest: list[tuple[int, str, str]] = []

    def add(self, size: int, survivor_path: str, digest_hex: str) -> None:
        self.sizes[size] += 1
        self._largest.append((-size, survivor_path, digest_hex[:16]))
        if len(self._largest) > 4 * self.keep + 64:
            self._trim()

    def merge(self, other: ClusterTally) -> None:
        self.sizes.update(other.sizes)
        self._largest.extend(other._largest)
        self._trim()

    def _trim(self) -> None:
        self._largest.sort()
        del self._largest[self.keep :]

    @property
    def duplicates(self) -> int:
        """Records dropped: all but the survivor of each cluster."""
        return sum((size - 1) * n for size, n in self.sizes.items())

    def largest(self) -> list[tuple[int, str, str]]:
        self._trim()
        return [(-n, path, prefix) for n, path, prefix in self._largest]


class ExactDedupStage(SpillingStage):
    """SHA-256 exact dedup with a deterministic, configurable survivor priority."""

    name: ClassVar[str] = "exact_dedup"
    global_step: ClassVar[str | None] = "exact"

    def __init__(
        self,
        *,
        priority: Iterable[str] = DEFAULT_PRIORITY,
        memory_mb: float = 64,
        spill_dir: str | None = None,
        top_clusters: int = 20,
    ) -> None:
        self.priority = parse_priority(priority)
        if (
            isinstance(memory_mb, bool)
            or not isinstance(memory_mb, (int, float))
            or not 0 <= memory_mb <= 1_000_000
        ):
            raise ValueError(
                f"exact_dedup.memory_mb: must be a number in [0, 1000000] (0: spill every "
                f"held record at once), got {memory_mb!r}"
            )
        self.memory_mb = memory_mb
        self._budget = int(memory_mb * 1e6)
        self.top_clusters = top_clusters
        self._spill_to(spill_dir, "exact_dedup")
        self._held = 0
        self._spilled = 0
        self._spilled_bytes = 0
        #: Held records not yet spilled, as the spill would hold them (digest, pickled fields,
        #: text bytes), in arrival order; every spilled record arrived before all of them.
        self._memory: list[tuple[bytes, bytes, bytes]] = []
        self._memory_bytes = 0
        self._report: dict[str, Any] = {}

    def process_batch(self, batch: list[Record]) -> list[Record]:
        passed: list[Record] = []
        held: list[tuple[bytes, bytes, bytes]] = []
        size = 0
        for record in batch:
            entry = self.held_parts(record) if record.drop_reason is None else None
            if entry is None:  # dropped before, or quarantined now
                passed.append(record)
                continue
            _, fields, data = entry
            held.append(entry)
            size += len(data) + len(fields) + _OVERHEAD
        self._held += len(held)
        if self._memory_bytes + size <= self._budget:
            self._memory += held
            self._memory_bytes += size
        else:
            # Over budget: what was held in memory goes out first (it arrived first), then
            # this batch, from the bytes it was hashed from.
            self._flush_memory()
            self._write(held)
        return passed

    def _write(self, entries: list[tuple[bytes, bytes, bytes]]) -> None:
        """Append (digest, pickled fields, text bytes) entries to the spill, one batch."""
        if not entries:
            return
        parts: list[bytes] = []
        index: list[bytes] = []
        at = self._spilled_bytes
        header, size, entry = HELD_HEADER.pack, HELD_HEADER.size, _INDEX.pack
        for digest, fields, data in entries:
            n_fields, n_text = len(fields), len(data)
            parts += (header(n_fields, n_text), fields, data)
            index.append(entry(digest, at))
            at += size + n_fields + n_text
        self._spill.append_parts(_RECORDS, parts)
        self._spill.append_parts(_INDEX_FILE, [b"".join(index)])
        self._spilled += len(entries)
        self._spilled_bytes = at

    def _flush_memory(self) -> None:
        self._write(self._memory)
        self._memory = []
        self._memory_bytes = 0

    def state_dict(self) -> dict[str, Any]:
        # Records held in memory are part of the state: they are spilled first, so the state
        # stays two file lengths, whatever the budget.
        self._flush_memory()
        return {"format": _FORMAT, "spill": self._spill.commit(), "held": self._held}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != _FORMAT:
            raise ValueError(
                f"exact_dedup: checkpoint spill format {state.get('format')!r}, this version "
                f"reads {_FORMAT}; finish that run with the version that started it, or start over"
            )
        self._spill.restore(state["spill"])
        lengths = state["spill"]["lengths"]
        self._held = int(state["held"])
        self._spilled = lengths.get(_INDEX_FILE, 0) // _INDEX.size
        self._spilled_bytes = lengths.get(_RECORDS, 0)
        self._memory = []
        self._memory_bytes = 0

    def finish(self) -> Iterator[Record]:
        """Every held record, survivors and duplicates marked dropped, in arrival order;
        streamed from the spill (a generator: the report is complete once it is exhausted)."""
        memory, self._memory, self._memory_bytes = self._memory, [], 0
        with self._spill.view(_INDEX_FILE) as index, self._spill.view(_RECORDS) as records:
            if len(index) // _INDEX.size != self._spilled or len(records) != self._spilled_bytes:
                raise RuntimeError(
                    f"exact_dedup: spill holds {len(index) // _INDEX.size} index entries and "
                    f"{len(records)} bytes, the stage wrote {self._spilled} and "
                    f"{self._spilled_bytes}"
                )
            held = _Held(index, records, memory)
            members, winners, tally = self._clusters(held)
            at, n = 0, len(members)
            member = members[0] if n else -1
            for ordinal, record in enumerate(held.records()):
                if ordinal == member:
                    winner = winners[at]
                    if winner < 0:  # a survivor, holding minus its cluster's size
                        self.mark_survivor(record, -winner)
                    else:
                        self.mark_duplicate(record, held.fields(winner).id)
                    at += 1
                    member = members[at] if at < n else -1
                yield record
        del memory, held
        self.close()
        self._report = self.build_report(records_in=self._held, tally=tally, spilled=self._spilled)

    # -- the global step's parts every executor uses (over shards: see .exact_shards) --------

    def held_parts(self, record: Record) -> tuple[bytes, bytes, bytes] | None:
        """A live record as the stage holds it (SHA-256, pickled fields, text bytes), its
        ``meta["sha256"]`` set; ``None`` when it cannot be held: then it is quarantined in
        place (``exact_dedup:error:<type>``, the run goes on). The fields are pickled now, so
        that such a record is quarantined here, alone, and not at a later checkpoint; a shard
        executor calls this on every live record before its shuffle, for the same
        quarantine."""
        try:
            data = record.text.encode("utf-8", "surrogatepass")
            digest = hashlib.sha256(data).digest()
            record.meta["sha256"] = digest.hex()
            return digest, held_fields(record), data
        except Exception as exc:  # quarantine the record, the run goes on
            self._quarantine(record, exc)
            return None

    def admit(self, records: Iterable[Record]) -> int:
        """:meth:`held_parts`'s checks on live ``records`` (a shard executor's step before its
        shuffle): each one the stage could not hold is quarantined in place. Returns the
        records computed here for the report (none: exact dedup computes nothing ahead)."""
        for record in records:
            if record.drop_reason is None:
                self.held_parts(record)
        return 0

    def mark_survivor(self, record: Record, size: int) -> None:
        """The decision on the survivor of a cluster of ``size`` records."""
        record.meta["duplicates"] = size - 1

    def mark_duplicate(self, record: Record, survivor_id: str) -> None:
        """The decision on a copy: dropped, naming the survivor."""
        record.drop_reason = f"{self.name}:duplicate"
        record.meta["duplicate_of"] = survivor_id

    def new_tally(self) -> ClusterTally:
        return ClusterTally(self.top_clusters)

    def build_report(
        self, *, records_in: int, tally: ClusterTally, spilled: int | None
    ) -> dict[str, Any]:
        """The stage's report from its global step's tally, whichever executor ran it, and the
        records spilled (``None``: an executor that holds none)."""
        report: dict[str, Any] = {"records_in": records_in}
        if spilled is not None:
            report["spilled"] = spilled
        duplicates = tally.duplicates
        report.update(
            {
                "unique": records_in - duplicates,
                "duplicates": duplicates,
                "clusters": sum(tally.sizes.values()),
                "cluster_sizes": {str(k): v for k, v in sorted(tally.sizes.items())},
                "largest_clusters": [
                    {"size": n, "survivor": p, "sha256_prefix": h} for n, p, h in tally.largest()
                ],
                "priority": [f"{f}:{'desc' if d else 'asc'}" for f, d in self.priority],
            }
        )
        return report

    def _clusters(self, held: _Held) -> tuple[memoryview, memoryview, ClusterTally]:
        """Decisions for the records that have copies, in two aligned columns sorted by
        ordinal: ``members`` and ``winners`` (the survivor's ordinal, or for the survivor itself
        minus its cluster's size); 16 bytes per such record, nothing for unique ones. Also the
        clusters' tally for the report."""
        prefix = held.prefixes()
        order = np.argsort(prefix, kind="stable")  # stable: equal hashes in arrival order
        same = prefix[order]
        del prefix
        same = np.concatenate(([0], same[1:] == same[:-1], [0])).astype(np.int8)
        # Runs of one 64-bit prefix in sorted order: order[start : end + 1].
        edges = np.diff(same)
        del same
        starts, ends = np.flatnonzero(edges == 1).data, np.flatnonzero(edges == -1).data
        del edges
        members, winners = array("q"), array("q")
        tally = self.new_tally()
        for start, end in zip(starts, ends, strict=True):
            # A run shares a 64-bit prefix; group it by the full digest (almost always one).
            groups: dict[bytes, list[int]] = {}
            for j in order[start : end + 1].tolist():
                groups.setdefault(held.digest(j), []).append(j)
            for digest, group in groups.items():
                if len(group) < 2:
                    continue
                fields = [(j, held.fields(j)) for j in group]  # arrival order
                survivor = Survivor.of((sort_key(r, self.priority), (j, r)) for j, r in fields)
                best, best_record = survivor.item
                members.extend(group)
                winners.extend(-len(group) if j == best else best for j in group)
                tally.add(len(group), best_record.path or best_record.id, digest.hex())
        del order
        by_ordinal = np.argsort(np.frombuffer(members, dtype=np.int64))  # ordinals are unique
        # memoryviews: item access gives plain ints, cheap in the per-record loop.
        return (
            np.frombuffer(members, dtype=np.int64)[by_ordinal].data,
            np.frombuffer(winners, dtype=np.int64)[by_ordinal].data,
            tally,
        )

    def close(self) -> None:
        """Close spill files (they stay on disk: a resume from an older state may name them)."""
        self._spill.close()

    def report(self) -> dict[str, Any]:
        return self._report or {"records_in": self._held, "spilled": self._spilled}
