"""Exact dedup: SHA-256 of the content, one survivor per hash chosen by priority.

Design (why it looks like this):

- The survivor of a hash is the record with the smallest priority key
  (:mod:`codekiln.stream.dedup.priority`), never the first to arrive, so it can only be known at
  the end of the stream. Records are therefore held back and emitted by :meth:`finish`.
- Held records are not kept in memory: each is appended (pickled) to one of ``partitions``
  spill files chosen by its hash, and its (hash, priority key, id) to a small key file beside
  it. Memory while streaming is constant (file buffers); at the end each partition's key file
  is read to pick the survivors, then its records are streamed out once, so the peak is one
  partition's distinct hashes, about ``1/partitions`` of the input's.
- The checkpoint is the committed length of every spill file (:class:`~.spill.Spill`): after
  ``kill -9`` the files are truncated back to it and the runtime replays the rest from the
  source, so nothing is held twice or lost. The files are append-only: the prefix a state names
  never changes, so any older state stays loadable too (the runtime's rule for spill files).

Duplicates leave as rejects with reason ``exact_dedup:duplicate`` and ``meta["duplicate_of"]``
(the survivor's id); every record gets ``meta["sha256"]``.
"""

from __future__ import annotations

import hashlib
import pickle
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from codekiln.stream.dedup.priority import DEFAULT_PRIORITY, parse_priority, sort_key
from codekiln.stream.dedup.spill import Spill
from codekiln.stream.record import Record
from codekiln.stream.stage import BatchStage


def _pickle(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _to_tuple(r: Record) -> tuple[Any, ...]:
    return (r.id, r.text, r.lang, r.path, r.repo, r.source, r.meta)


def _from_tuple(t: tuple[Any, ...]) -> Record:
    return Record(id=t[0], text=t[1], lang=t[2], path=t[3], repo=t[4], source=t[5], meta=t[6])


def content_hash(text: str) -> str:
    """SHA-256 hex digest of the UTF-8 text (lone surrogates kept, never a crash)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class ExactDedupStage(BatchStage):
    """SHA-256 exact dedup with a deterministic, configurable survivor priority."""

    name: ClassVar[str] = "exact_dedup"
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        *,
        priority: Iterable[str] = DEFAULT_PRIORITY,
        partitions: int = 64,
        spill_dir: str | None = None,
        top_clusters: int = 20,
    ) -> None:
        self.priority = parse_priority(priority)
        if not isinstance(partitions, int) or not 1 <= partitions <= 4096:
            raise ValueError(
                f"exact_dedup.partitions: must be an integer in [1, 4096], got {partitions!r}"
            )
        self.partitions = partitions
        self.top_clusters = top_clusters
        self._spill_dir = spill_dir
        self._spill = Spill(spill_dir, "exact_dedup")
        self._held = 0
        self._finished = False
        self._report: dict[str, Any] = {}

    def open(self, work_dir: Path) -> None:
        """Spill under the runtime's per-stage folder (kept across resumes of the same run)."""
        if self._spill.path is None and self._spill_dir is None:
            self._spill = Spill(work_dir, "spill")

    def process(self, batch: list[Record]) -> list[Record]:
        # Not BatchStage's retry-one-by-one: a batch half-spilled then retried would hold
        # records twice. process_batch quarantines bad records itself, and an I/O error while
        # spilling escapes: a crash, resumed from the last checkpoint.
        return self.process_batch(batch)

    def process_batch(self, batch: list[Record]) -> list[Record]:
        passed: list[Record] = []
        prepared: list[tuple[str, bytes, bytes]] = []
        for record in batch:
            if record.drop_reason is not None:
                passed.append(record)
                continue
            try:
                digest = content_hash(record.text)
                record.meta["sha256"] = digest
                part = f"p{int(digest[:8], 16) % self.partitions:04d}"
                key = sort_key(record, self.priority)
                # Keys in one small file (read to pick survivors), records in another.
                prepared.append(
                    (part, _pickle((digest, key, record.id)), _pickle(_to_tuple(record)))
                )
            except Exception as exc:  # quarantine the record, the run goes on
                passed.append(self._quarantine(record, exc))
        for part, key_bytes, record_bytes in prepared:
            self._spill.append(f"{part}.key", key_bytes)
            self._spill.append(f"{part}.rec", record_bytes)
            self._held += 1
        return passed

    def state_dict(self) -> dict[str, Any]:
        return {"spill": self._spill.commit(), "held": self._held}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._spill.restore(state["spill"])
        self._held = int(state["held"])

    def finish(self) -> list[Record]:
        return list(self.iter_finish())

    def iter_finish(self) -> Iterator[Record]:
        """Survivors, and duplicates marked dropped, partition by partition."""
        sizes: Counter[int] = Counter()
        largest: list[tuple[int, str, str]] = []
        unique = duplicates = 0
        for name in self._spill.names():
            if not name.endswith(".key"):
                continue
            part = name[: -len(".key")]
            best: dict[str, tuple[Any, int, str]] = {}
            count: Counter[str] = Counter()
            for ordinal, (h, key, rid) in enumerate(self._spill.read_pickles(name)):
                count[h] += 1
                cur = best.get(h)
                if cur is None or key < cur[0]:
                    best[h] = (key, ordinal, rid)
            held = zip(
                self._spill.read_pickles(name),
                self._spill.read_pickles(f"{part}.rec"),
                strict=True,
            )
            for ordinal, ((h, _, _), fields) in enumerate(held):
                record = _from_tuple(fields)
                if best[h][1] == ordinal:
                    unique += 1
                    n = count[h]
                    if n > 1:
                        sizes[n] += 1
                        record.meta["duplicates"] = n - 1
                        largest.append((n, record.path or record.id, h[:16]))
                else:
                    duplicates += 1
                    record.drop_reason = f"{self.name}:duplicate"
                    record.meta["duplicate_of"] = best[h][2]
                yield record
            largest.sort(key=lambda t: (-t[0], t[1]))
            del largest[self.top_clusters :]
        self.close()
        self._finished = True
        self._report = {
            "records_in": self._held,
            "unique": unique,
            "duplicates": duplicates,
            "clusters": sum(sizes.values()),
            "cluster_sizes": {str(k): v for k, v in sorted(sizes.items())},
            "largest_clusters": [
                {"size": n, "survivor": p, "sha256_prefix": h} for n, p, h in largest
            ],
            "priority": [f"{f}:{'desc' if d else 'asc'}" for f, d in self.priority],
        }

    def close(self) -> None:
        """Close spill files (they stay on disk: a resume from an older state may name them)."""
        self._spill.close()

    def report(self) -> dict[str, Any]:
        return self._report or {"records_in": self._held}
