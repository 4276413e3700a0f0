"""Fuzzy dedup over shards, for an executor that runs a pipeline shard by shard (the Ray
executor, :mod:`codekiln.stream.ray`): the standard distributed MinHash-LSH, deciding with the
stage's own parts: :class:`~.clusters.Survivors` (which member of a cluster survives),
:class:`~.clusters.RepoTable` (repository aggregates: partial per shard, merge, cluster), the
stage's ``mark_*`` methods (the decision on a record) and ``file_report`` /
``repository_report`` (the report). Plain functions over records and picklable results: how
the steps are scheduled is the executor's business.

1. **signatures** are attached in the map step before (the ``minhash`` stage, or the stage's
   own :meth:`FuzzyDedupStage.admit` for records that still lack them, which also quarantines
   each record the stage could not hold, as its ``process_batch`` does): band keys per record.
2. **keys** (a task per shard): one ``(band, band key, document)`` row per band of each live
   record, shuffled by ``(band + key) mod partitions``: every bucket of every band lands whole
   in one reducer, and a reducer holds about ``records x bands / partitions`` rows (24 bytes
   each) whatever the size of the largest bucket. A document is ``shard << 32 | index``.
3. **edges** (a task per partition): a sort by (band, key); equal neighbours are joined, so a
   bucket of ``m`` documents gives ``m - 1`` edges (a path), never ``m^2`` pairs.
4. **components** (one task): scipy's compiled connected components over the edge list,
   relabelled to the documents that have an edge; the rest are singletons.
5. **survivors**: a task per shard that holds cluster members reads them back for their
   priority keys (:func:`sort_key`); the smallest key per cluster, in input order, survives,
   by the stage's own :class:`~codekiln.stream.dedup.clusters.Survivors` (transitive clusters,
   same priority).
6. **apply** (in the next map step): losers are dropped as ``fuzzy_dedup:duplicate`` with
   ``meta["duplicate_of"]``; survivors of a cluster get ``meta["fuzzy_cluster_size"]``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from codekiln.stream.dedup.clusters import (
    ClusterInfo,
    HeldCounts,
    RepoClusters,
    RepoPartial,
    Survivors,
)
from codekiln.stream.dedup.fuzzy import META_BANDS, META_SIG, FuzzyDedupStage, take_minhash
from codekiln.stream.dedup.lsh import components
from codekiln.stream.dedup.minhash import MinHashParams, band_keys
from codekiln.stream.dedup.priority import Term, sort_key
from codekiln.stream.record import Record

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
SHARD_SHIFT = 32
#: local index -> (winner id, cluster size)
ShardResult = dict[int, tuple[str, int]]


def gid(shard: int, local: int) -> int:
    return (shard << SHARD_SHIFT) | local


def record_bands(record: Record, params: MinHashParams) -> list[int] | None:
    """The band keys a record carries (from band keys, or from a whole signature)."""
    bands = record.meta.get(META_BANDS)
    if bands is not None:
        return list(bands)
    sig_b64 = record.meta.get(META_SIG)
    if sig_b64 is None:
        return None
    sig = np.frombuffer(base64.b64decode(sig_b64), dtype=np.uint32).reshape(1, -1)
    return [int(k) for k in band_keys(sig, params)[0]]


def shard_keys(
    records: Iterable[Record], shard: int, params: MinHashParams, partitions: int
) -> tuple[list[U64], I64, HeldCounts]:
    """Band rows of one shard split by partition, the shard's local edges, and its counts.

    Within the shard, each (band, key) bucket is joined locally (a path of edges) and only its
    first document is shuffled: a reducer receives at most one row per bucket and shard, so a
    bucket of a million copies costs it as many rows as there are shards."""
    docs: list[int] = []
    rows: list[list[int]] = []
    held = no_shingles = 0
    for local, record in enumerate(records):
        if record.drop_reason is not None:
            continue
        bands = record_bands(record, params)
        if bands is None:
            no_shingles += 1
            continue
        held += 1
        docs.append(gid(shard, local))
        rows.append(bands)
    counts = HeldCounts(held, no_shingles)
    no_edges = np.zeros((0, 2), np.int64)
    if not rows:
        return [np.zeros((0, 3), np.uint64) for _ in range(partitions)], no_edges, counts
    keys = np.asarray(rows, dtype=np.uint64)  # (n, bands)
    n, b = keys.shape
    table = np.empty((n * b, 3), dtype=np.uint64)
    table[:, 0] = np.tile(np.arange(b, dtype=np.uint64), n)
    table[:, 1] = keys.reshape(-1)
    table[:, 2] = np.repeat(np.asarray(docs, dtype=np.uint64), b)
    table, local_edges = _combine(table)
    part = (table[:, 0] + table[:, 1] % np.uint64(partitions)) % np.uint64(partitions)
    order = np.argsort(part, kind="stable")
    table = table[order]
    bounds = np.searchsorted(part[order], np.arange(partitions + 1, dtype=np.uint64))
    parts = [table[bounds[p] : bounds[p + 1]].copy() for p in range(partitions)]
    return parts, local_edges, counts


def _combine(table: U64) -> tuple[U64, I64]:
    """One row per (band, key) bucket (its first document), and the edges joining the rest."""
    order = np.lexsort((table[:, 2], table[:, 1], table[:, 0]))
    t = table[order]
    first = np.ones(t.shape[0], dtype=bool)
    first[1:] = (t[1:, 0] != t[:-1, 0]) | (t[1:, 1] != t[:-1, 1])
    head = np.maximum.accumulate(np.where(first, np.arange(t.shape[0]), 0))
    rest = ~first
    edges = np.stack([t[head[rest], 2], t[rest, 2]], axis=1).astype(np.int64)
    if edges.size:
        edges = np.unique(edges, axis=0)
    return t[first], edges


def partition_edges(tables: list[U64]) -> I64:
    """Edges ``(e, 2)`` joining the documents of every (band, key) bucket of one partition."""
    table = np.concatenate(tables) if tables else np.zeros((0, 3), np.uint64)
    if table.shape[0] < 2:
        return np.zeros((0, 2), np.int64)
    order = np.lexsort((table[:, 2], table[:, 1], table[:, 0]))
    t = table[order]
    same = np.flatnonzero((t[1:, 0] == t[:-1, 0]) & (t[1:, 1] == t[:-1, 1]))
    edges = np.stack([t[same, 2], t[same + 1, 2]], axis=1).astype(np.int64)
    return np.unique(edges, axis=0) if edges.size else edges


def cluster(edge_lists: list[I64]) -> tuple[I64, I64]:
    """(documents that have an edge, their component label), by compiled connected components."""
    edges = np.concatenate(edge_lists) if edge_lists else np.zeros((0, 2), np.int64)
    if not edges.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    nodes, compact = np.unique(edges.reshape(-1), return_inverse=True)
    compact = compact.reshape(-1, 2).astype(np.int64)
    labels = components(nodes.size, compact[:, 0].copy(), compact[:, 1].copy())
    return nodes.astype(np.int64), labels


def members_by_shard(nodes: I64, labels: I64) -> dict[int, dict[int, int]]:
    out: dict[int, dict[int, int]] = {}
    shards = nodes >> SHARD_SHIFT
    locals_ = nodes & ((1 << SHARD_SHIFT) - 1)
    for s, loc, lab in zip(shards.tolist(), locals_.tolist(), labels.tolist(), strict=True):
        out.setdefault(s, {})[loc] = lab
    return out


#: (document, label, priority key, id, path-or-id)
Member = tuple[int, int, Any, str, str]


def shard_members(
    records: Iterable[Record], shard: int, members: dict[int, int], terms: tuple[Term, ...]
) -> list[Member]:
    out: list[Member] = []
    for local, record in enumerate(records):
        label = members.get(local)
        if label is not None:
            out.append(
                (
                    gid(shard, local),
                    label,
                    sort_key(record, terms),
                    record.id,
                    record.path or record.id,
                )
            )
    return out


def winners(
    member_lists: list[list[Member]],
) -> tuple[dict[int, ShardResult], list[ClusterInfo], int]:
    """Per-shard decisions, the cluster list for the report, and the members dropped."""
    members = sorted((m for ms in member_lists for m in ms), key=lambda m: m[0])
    survivors = Survivors()
    for _, label, key, rid, path in members:
        survivors.add(label, key, rid, path)
    out: dict[int, ShardResult] = {}
    dropped = 0
    for doc, label, _, rid, _ in members:
        winner = survivors.winner(label)
        dropped += rid != winner
        out.setdefault(doc >> SHARD_SHIFT, {})[doc & ((1 << SHARD_SHIFT) - 1)] = (
            winner,
            survivors.sizes[label],
        )
    return out, survivors.clusters(), dropped


class FuzzyApply:
    """Marks one shard's records with the fuzzy-dedup decision (the stage's own marks)."""

    def __init__(self, stage: FuzzyDedupStage, result: ShardResult) -> None:
        self.stage = stage
        self.result = result

    def __call__(self, record: Record, local: int) -> None:
        bands, sig = take_minhash(record)
        if self.stage.mark_without_shingles(record, bands, sig):
            return
        hit = self.result.get(local)
        if hit is not None:
            self.stage.mark_clustered(record, *hit)


# -- repository level --------------------------------------------------------------------------
#
# A repository's files are one document (:class:`~codekiln.stream.dedup.clusters.RepoTable`, the
# stage's own table): per shard a table is filled by the stage's ``add_to_repositories``, split
# by hash partition of the repository name; partitions are merged in shard order (the minimum
# and "first best value" are the same in any grouping, so the merge equals one pass in input
# order); one task clusters the merged table as the stage's ``finish`` does.


def repo_partials(
    records: Iterable[Record], stage: FuzzyDedupStage, partitions: int
) -> tuple[list[RepoPartial], int]:
    """One shard's repositories split by partition, and its live record count."""
    held = 0
    table = stage.repository_table()
    for record in records:
        if record.drop_reason is not None:
            continue
        held += 1
        stage.add_to_repositories(table, record)
    parts: list[list[str]] = [[] for _ in range(partitions)]
    for repo in table.values:
        parts[_repo_partition(repo, partitions)].append(repo)
    return [table.partial(repos) for repos in parts], held


def _repo_partition(repo: str, partitions: int) -> int:
    digest = hashlib.sha256(repo.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") % partitions


def merge_repos(per_shard: list[RepoPartial], stage: FuzzyDedupStage) -> RepoPartial:
    """Merge one partition's partials, given in shard order."""
    table = stage.repository_table()
    for partial in per_shard:
        table.merge(partial)
    return table.partial()


def cluster_repos(merged: list[RepoPartial], stage: FuzzyDedupStage) -> RepoClusters:
    """The repository clusters of the merged partitions, as the stage's finish decides them."""
    table = stage.repository_table()
    for part in merged:  # partitions hold disjoint repositories
        table.merge(part)
    return table.cluster(stage.params)


class RepoApply:
    """Drops the files of repositories that lost to a near-duplicate repository."""

    def __init__(self, stage: FuzzyDedupStage, losers: dict[str, str]) -> None:
        self.stage = stage
        self.losers = losers

    def __call__(self, record: Record, local: int) -> None:
        take_minhash(record)
        self.stage.mark_repository(record, self.losers)
