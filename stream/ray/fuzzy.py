"""Fuzzy dedup over shards: the standard distributed MinHash-LSH, with the stage's own parts.

1. **signatures** are attached in the map step before (the ``minhash`` stage, or
   :meth:`FuzzyDedupStage.annotate` for records that still lack them): band keys per record.
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
   exactly as :meth:`FuzzyDedupStage.finish` decides (transitive clusters, same priority).
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
from codekiln.stream.dedup.fuzzy import META_BANDS, META_FP, META_SIG, FuzzyDedupStage
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
) -> tuple[list[U64], I64, dict[str, int]]:
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
    counts = {"held": held, "no_shingles": no_shingles}
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
) -> tuple[dict[int, ShardResult], list[dict[str, Any]], int, int]:
    """Per-shard decisions, the cluster list for the report, and (kept, dropped) members."""
    members = sorted((m for ms in member_lists for m in ms), key=lambda m: m[0])
    best: dict[int, tuple[Any, str, str]] = {}
    size: dict[int, int] = {}
    paths: dict[int, list[str]] = {}
    for _, label, key, rid, path in members:
        size[label] = size.get(label, 0) + 1
        if label not in best or key < best[label][0]:
            best[label] = (key, rid, path)
        group = paths.setdefault(label, [])
        if len(group) < 5:
            group.append(path)
    out: dict[int, ShardResult] = {}
    kept = dropped = 0
    for doc, label, _, rid, _ in members:
        winner = best[label][1]
        kept += rid == winner
        dropped += rid != winner
        out.setdefault(doc >> SHARD_SHIFT, {})[doc & ((1 << SHARD_SHIFT) - 1)] = (
            winner,
            size[label],
        )
    clusters = [
        {"size": size[label], "survivor": path, "members": paths[label]}
        for label, (_, _, path) in best.items()
    ]
    return out, clusters, kept, dropped


def fuzzy_report(
    stage: FuzzyDedupStage,
    counts: dict[str, int],
    kept: int,
    dropped: int,
    clusters: list[dict[str, Any]],
) -> dict[str, Any]:
    """The stage's own report, filled from the distributed counts."""
    stage._held = counts["held"]
    stage._no_shingles = counts["no_shingles"]
    stage._computed_here = counts.get("computed_here", 0)
    singletons = counts["held"] - kept - dropped
    stage._set_report(kept + singletons, dropped, clusters, unit="files")
    report: dict[str, Any] = stage.report()
    return report


class FuzzyApply:
    """Marks one shard's records with the fuzzy-dedup decision."""

    def __init__(self, stage_name: str, result: ShardResult) -> None:
        self.name = stage_name
        self.result = result

    def __call__(self, record: Record, local: int) -> None:
        record.meta.pop(META_FP, None)
        bands = record.meta.pop(META_BANDS, None)
        sig = record.meta.pop(META_SIG, None)
        if bands is None and sig is None:
            record.meta["fuzzy"] = "no_shingles"
            return
        hit = self.result.get(local)
        if hit is None:
            return
        winner, size = hit
        if record.id == winner:
            record.meta["fuzzy_cluster_size"] = size
        else:
            record.drop_reason = f"{self.name}:duplicate"
            record.meta["duplicate_of"] = winner


def strip(record: Record) -> None:
    """Remove the private MinHash keys from a record that leaves the fuzzy step dropped."""
    for key in (META_FP, META_BANDS, META_SIG):
        record.meta.pop(key, None)


# -- repository level --------------------------------------------------------------------------
#
# A repository's files are one document: its signature is the element-wise minimum of its
# files' signatures, its priority values the best of its files' (FuzzyDedupStage's own
# ``_add_to_repository``). Per shard, each repository's partial (signature, values) is built with
# the stage's own method; partials are merged per hash partition of the repository name, in
# shard order (the minimum and "first best value" are the same in any grouping, so the merge
# equals one pass in input order); one task clusters the repositories (the stage's band keys and
# ``cluster_labels``) and picks each cluster's winner by the stage's repository priority key.

#: repository -> (signature bytes or None, priority values incl. "files")
RepoPartial = dict[str, tuple[bytes | None, dict[str, Any]]]


def repo_partials(
    records: Iterable[Record], stage: FuzzyDedupStage, partitions: int
) -> tuple[list[RepoPartial], int]:
    """One shard's repositories split by partition, and its live record count.

    ``stage`` must be a fresh copy: its repository tables are filled here."""
    held = 0
    for record in records:
        if record.drop_reason is not None:
            continue
        held += 1
        sig_b64 = record.meta.get(META_SIG)
        sig = None if sig_b64 is None else np.frombuffer(base64.b64decode(sig_b64), np.uint32)
        stage._add_to_repository(record, sig)
    parts: list[RepoPartial] = [{} for _ in range(partitions)]
    for repo, values in stage._repo_values.items():
        sig = stage._repo_sigs.get(repo)
        parts[_repo_partition(repo, partitions)][repo] = (
            None if sig is None else sig.tobytes(),
            dict(values),
        )
    return parts, held


def _repo_partition(repo: str, partitions: int) -> int:
    digest = hashlib.sha256(repo.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") % partitions


def merge_repos(
    per_shard: list[RepoPartial], terms: tuple[Term, ...]
) -> dict[str, tuple[bytes | None, dict[str, Any]]]:
    """Merge one partition's partials, given in shard order."""
    from codekiln.stream.dedup.fuzzy import _better

    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    for partial in per_shard:
        for repo, (sig_b, values) in partial.items():
            sig = None if sig_b is None else np.frombuffer(sig_b, dtype=np.uint32)
            cur = out.get(repo)
            if cur is None:
                out[repo] = (sig, dict(values))
                continue
            cur_sig, cur_values = cur
            cur_values["files"] = cur_values.get("files", 0) + values.get("files", 0)
            for field, descending in terms:
                value = values.get(field)
                if value is None:
                    continue
                current = cur_values.get(field)
                if current is None or _better(value, current, descending):
                    cur_values[field] = value
            if sig is not None:
                cur_sig = sig.copy() if cur_sig is None else np.minimum(cur_sig, sig)
            out[repo] = (cur_sig, cur_values)
    return {r: (None if s is None else s.tobytes(), v) for r, (s, v) in out.items()}


def cluster_repos(
    merged: list[dict[str, tuple[bytes | None, dict[str, Any]]]], stage: FuzzyDedupStage
) -> tuple[dict[str, str], list[dict[str, Any]], dict[str, int]]:
    """Losing repository -> winner, the cluster list, and counts; as the stage's finish does."""
    from codekiln.stream.dedup.lsh import cluster_labels

    sigs: dict[str, Any] = {}
    values: dict[str, dict[str, Any]] = {}
    for part in merged:
        for repo, (sig_b, vals) in part.items():
            values[repo] = vals
            if sig_b is not None:
                sigs[repo] = np.frombuffer(sig_b, dtype=np.uint32)
    stage._repo_values = values
    repos = sorted(sigs)
    losers: dict[str, str] = {}
    clusters: list[dict[str, Any]] = []
    dropped_files = 0
    if repos:
        labels = cluster_labels(band_keys(np.stack([sigs[r] for r in repos]), stage.params))
        groups: dict[int, list[str]] = {}
        for repo, label in zip(repos, labels.tolist(), strict=True):
            groups.setdefault(label, []).append(repo)
        for group in groups.values():
            if len(group) < 2:
                continue
            win = min(group, key=lambda r: stage._repo_key_for(r, stage.priority))
            for repo in group:
                if repo != win:
                    losers[repo] = win
                    dropped_files += values[repo]["files"]
            files = sum(values[r]["files"] for r in group)
            clusters.append(
                {"size": len(group), "survivor": win, "members": sorted(group)[:5], "files": files}
            )
    counts = {
        "repositories": len(values),
        "repositories_without_shingles": len(values) - len(repos),
        "dropped_files": dropped_files,
    }
    return losers, clusters, counts


def repo_report(
    stage: FuzzyDedupStage,
    held: int,
    computed_here: int,
    clusters: list[dict[str, Any]],
    counts: dict[str, int],
) -> dict[str, Any]:
    stage._held = held
    stage._no_shingles = 0
    stage._computed_here = computed_here
    dropped = counts["dropped_files"]
    stage._set_report(held - dropped, dropped, clusters, unit="repositories")
    report: dict[str, Any] = stage.report()
    report["repositories"] = counts["repositories"]
    report["repositories_without_shingles"] = counts["repositories_without_shingles"]
    return report


class RepoApply:
    """Drops the files of repositories that lost to a near-duplicate repository."""

    def __init__(self, stage_name: str, losers: dict[str, str]) -> None:
        self.name = stage_name
        self.losers = losers

    def __call__(self, record: Record, local: int) -> None:
        from codekiln.stream.dedup.fuzzy import _repo_key

        strip(record)
        win = self.losers.get(_repo_key(record))
        if win is not None:
            record.drop_reason = f"{self.name}:duplicate_repository"
            record.meta["duplicate_of_repository"] = win
