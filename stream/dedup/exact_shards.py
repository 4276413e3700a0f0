"""Exact dedup over shards, for an executor that runs a pipeline shard by shard (the Ray
executor, :mod:`codekiln.stream.ray`): hash-partitioned shuffle, one survivor per hash by
priority, the same decisions as :class:`~.exact.ExactDedupStage` over the whole stream (and
its report, :meth:`~.exact.ExactDedupStage.build_report`). Plain functions over records and
picklable results: how the steps are scheduled is the executor's business.

1. **keys** (a task per shard): SHA-256 of every live record (:func:`content_hash`, the stage's
   own); within the shard, one entry per distinct hash: the best priority key
   (:func:`sort_key`, the stage's own), its id and the count. A hash repeated a million times in
   a shard is still one entry, so no reducer ever holds a bucket bigger than the shard count.
2. **reduce** (a task per hash partition): the best entry per hash over all shards, taken in
   shard order with a strict ``<``, which is exactly the single-machine stage's "first record of
   smallest key in input order". Only hashes seen more than once leave the reducer.
3. **apply** (in the next map step, per shard): a record whose hash has a cluster is kept if it
   is the winner (the winner's shard, first record with the winner's id), else dropped as
   ``exact_dedup:duplicate`` with ``meta["duplicate_of"]``, as the stage does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from codekiln.stream.dedup.exact import ExactDedupStage, content_hash
from codekiln.stream.dedup.priority import Term, sort_key
from codekiln.stream.record import Record

#: (hash, sort key, id, path-or-id, count in shard, shard)
Entry = tuple[str, Any, str, str, int, int]
#: hash -> (winner id, cluster size, winner's shard)
ShardResult = dict[str, tuple[str, int, int]]


def partition_of(digest: str, partitions: int) -> int:
    return int(digest[:8], 16) % partitions


def shard_keys(
    records: Iterable[Record], shard: int, terms: tuple[Term, ...], partitions: int
) -> list[list[Entry]]:
    best: dict[str, list[Any]] = {}
    for record in records:
        if record.drop_reason is not None:
            continue
        digest = content_hash(record.text)
        key = sort_key(record, terms)
        cur = best.get(digest)
        if cur is None:
            best[digest] = [key, record.id, record.path or record.id, 1]
        else:
            cur[3] += 1
            if key < cur[0]:
                cur[0], cur[1], cur[2] = key, record.id, record.path or record.id
    parts: list[list[Entry]] = [[] for _ in range(partitions)]
    for digest, (key, rid, path, n) in best.items():
        parts[partition_of(digest, partitions)].append((digest, key, rid, path, n, shard))
    return parts


def reduce_partition(
    per_shard: list[list[Entry]], top_clusters: int
) -> tuple[dict[int, ShardResult], dict[str, Any]]:
    """Winners of one hash partition; ``per_shard`` is in shard order."""
    best: dict[str, list[Any]] = {}
    shards_of: dict[str, list[int]] = {}
    records = 0
    for entries in per_shard:
        for digest, key, rid, path, n, shard in entries:
            records += n
            cur = best.get(digest)
            if cur is None:
                best[digest] = [key, rid, path, n, shard]
                shards_of[digest] = [shard]
            else:
                cur[3] += n
                shards_of[digest].append(shard)
                if key < cur[0]:
                    cur[0], cur[1], cur[2], cur[4] = key, rid, path, shard
    out: dict[int, ShardResult] = {}
    sizes: Counter[int] = Counter()
    largest: list[tuple[int, str, str]] = []
    for digest, (_, rid, path, total, win_shard) in best.items():
        if total < 2:
            continue
        sizes[total] += 1
        largest.append((total, path, digest[:16]))
        for shard in shards_of[digest]:
            out.setdefault(shard, {})[digest] = (rid, total, win_shard)
    largest.sort(key=lambda t: (-t[0], t[1]))
    stats = {
        "records_in": records,
        "unique": len(best),
        "sizes": dict(sizes),
        "largest": largest[:top_clusters],
    }
    return out, stats


def merge_stats(stage: ExactDedupStage, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The stage's report from the reducers' stats (no ``spilled``: the Ray executor shuffles
    records between tasks and holds none back)."""
    sizes: Counter[int] = Counter()
    largest: list[tuple[int, str, str]] = []
    records = unique = 0
    for p in parts:
        records += p["records_in"]
        unique += p["unique"]
        sizes.update({int(k): v for k, v in p["sizes"].items()})
        largest.extend(tuple(x) for x in p["largest"])  # type: ignore[misc]
    largest.sort(key=lambda t: (-t[0], t[1]))
    return stage.build_report(
        records_in=records, duplicates=records - unique, sizes=sizes, largest=largest, spilled=None
    )


class ExactApply:
    """Marks one shard's records with the exact-dedup decision (see the module docstring)."""

    def __init__(self, stage_name: str, shard: int, result: ShardResult) -> None:
        self.name = stage_name
        self.shard = shard
        self.result = result
        self._done: set[str] = set()

    def __call__(self, record: Record, local: int) -> None:
        digest = content_hash(record.text)
        record.meta["sha256"] = digest
        hit = self.result.get(digest)
        if hit is None:
            return
        winner, total, win_shard = hit
        if record.id == winner and win_shard == self.shard and digest not in self._done:
            self._done.add(digest)
            record.meta["duplicates"] = total - 1
        else:
            record.drop_reason = f"{self.name}:duplicate"
            record.meta["duplicate_of"] = winner
