"""Exact dedup over shards, for an executor that runs a pipeline shard by shard (the Ray
executor, :mod:`codekiln.stream.ray`): hash-partitioned shuffle, one survivor per hash by
priority, the same decisions as :class:`~.exact.ExactDedupStage` over the whole stream, by the
stage's own parts: :class:`~.exact.Survivor` (which record survives),
:class:`~.exact.ClusterTally` and :meth:`~.exact.ExactDedupStage.build_report` (the report),
:meth:`~.exact.ExactDedupStage.mark_survivor` / ``mark_duplicate`` (the decision on a record).
Plain functions over records and picklable results: how the steps are scheduled is the
executor's business.

0. **admit** (in the map step before): the stage's own
   :meth:`~.exact.ExactDedupStage.admit` quarantines each live record it could not hold (its
   fields cannot be pickled, its text not encoded), with the reason ``process_batch`` gives.
1. **keys** (a task per shard): SHA-256 of every live record (:func:`content_hash`, the stage's
   own); within the shard, one entry per distinct hash: its survivor's priority key
   (:func:`sort_key`, the stage's own), id and path, and the count. A hash repeated a million
   times in a shard is still one entry, so no reducer ever holds a bucket bigger than the shard
   count.
2. **reduce** (a task per hash partition): the survivor per hash over all shards, offered in
   shard order, which is exactly the single-machine stage's "first record of smallest key in
   input order". Only hashes seen more than once leave the reducer.
3. **apply** (in the next map step, per shard): a record whose hash has a cluster is kept if it
   is the winner (the winner's shard, first record with the winner's id), else dropped as
   ``exact_dedup:duplicate`` with ``meta["duplicate_of"]``, as the stage does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from codekiln.stream.dedup.exact import ClusterTally, ExactDedupStage, Survivor, content_hash
from codekiln.stream.dedup.priority import sort_key
from codekiln.stream.record import Record

#: (hash, sort key, id, path-or-id, count in shard, shard)
Entry = tuple[str, Any, str, str, int, int]
#: hash -> (winner id, cluster size, winner's shard)
ShardResult = dict[str, tuple[str, int, int]]


def partition_of(digest: str, partitions: int) -> int:
    return int(digest[:8], 16) % partitions


def shard_keys(
    records: Iterable[Record], shard: int, stage: ExactDedupStage, partitions: int
) -> list[list[Entry]]:
    best: dict[str, Survivor] = {}
    for record in records:
        if record.drop_reason is not None:
            continue
        digest = content_hash(record.text)
        key = sort_key(record, stage.priority)
        item = (record.id, record.path or record.id)
        cur = best.get(digest)
        if cur is None:
            best[digest] = Survivor(key, item)
        else:
            cur.offer(key, item)
    parts: list[list[Entry]] = [[] for _ in range(partitions)]
    for digest, s in best.items():
        rid, path = s.item
        parts[partition_of(digest, partitions)].append((digest, s.key, rid, path, s.count, shard))
    return parts


@dataclass
class Reduced:
    """One hash partition's result: the decisions per shard, and its part of the report."""

    per_shard: dict[int, ShardResult]
    records_in: int
    tally: ClusterTally


def reduce_partition(per_shard: list[list[Entry]], stage: ExactDedupStage) -> Reduced:
    """Winners of one hash partition; ``per_shard`` is in shard order."""
    best: dict[str, Survivor] = {}
    shards_of: dict[str, list[int]] = {}
    records = 0
    for entries in per_shard:
        for digest, key, rid, path, n, shard in entries:
            records += n
            cur = best.get(digest)
            if cur is None:
                best[digest] = Survivor(key, (rid, path, shard), n)
                shards_of[digest] = [shard]
            else:
                cur.offer(key, (rid, path, shard), n)
                shards_of[digest].append(shard)
    out: dict[int, ShardResult] = {}
    tally = stage.new_tally()
    for digest, s in best.items():
        if s.count < 2:
            continue
        rid, path, win_shard = s.item
        tally.add(s.count, path, digest)
        for shard in shards_of[digest]:
            out.setdefault(shard, {})[digest] = (rid, s.count, win_shard)
    return Reduced(out, records, tally)


def merge_reports(stage: ExactDedupStage, parts: list[Reduced]) -> dict[str, Any]:
    """The stage's report from the reducers' parts (no ``spilled``: the Ray executor shuffles
    records between tasks and holds none back)."""
    tally = stage.new_tally()
    for p in parts:
        tally.merge(p.tally)
    records = sum(p.records_in for p in parts)
    return stage.build_report(records_in=records, tally=tally, spilled=None)


class ExactApply:
    """Marks one shard's records with the exact-dedup decision (see the module docstring)."""

    def __init__(self, stage: ExactDedupStage, shard: int, result: ShardResult) -> None:
        self.stage = stage
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
            self.stage.mark_survivor(record, total)
        else:
            self.stage.mark_duplicate(record, winner)
