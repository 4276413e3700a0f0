"""The global step of fuzzy dedup, shared by every executor: survivors of file clusters,
repository aggregates (partial per shard, merge, cluster), and the counts its report is built
from (:class:`HeldCounts`).

:class:`~.fuzzy.FuzzyDedupStage` runs these over its whole stream at ``finish``; the Ray
executor runs the same functions over shards (:mod:`.fuzzy_shards`): a partial
per shard, merged in shard order, then clustered once. So both executors decide alike by
construction, not by a copy of the algorithm.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from codekiln.stream.dedup.lsh import cluster_labels
from codekiln.stream.dedup.minhash import MinHashParams, band_keys
from codekiln.stream.dedup.priority import Term, field_value, values_key
from codekiln.stream.record import Record

Signature = np.ndarray[Any, np.dtype[np.uint32]]
#: repository -> (signature bytes or None, priority values incl. "files"): a picklable partial.
RepoPartial = dict[str, tuple[bytes | None, dict[str, Any]]]
#: A cluster for the report: size, survivor, up to five members (and "files" for repositories).
ClusterInfo = dict[str, Any]

#: Members listed per cluster in the report.
MEMBERS_LISTED = 5


def repository_of(record: Record) -> str:
    """The repository a record belongs to; a record without one is its own repository."""
    return record.repo or f"~{record.id}"


def better(value: Any, current: Any, descending: bool) -> bool:
    """Whether ``value`` beats ``current`` for a priority term (mixed types: keep the first)."""
    try:
        return bool(value > current) if descending else bool(value < current)
    except TypeError:  # mixed types across files of one repository: keep the first seen
        return False


class Survivors:
    """The survivor of each file cluster: the smallest priority key, the first in input order
    on a tie. Members are added in input order, each with its cluster label."""

    def __init__(self) -> None:
        self.best: dict[int, tuple[Any, str, str]] = {}
        self.sizes: dict[int, int] = {}
        self.members: dict[int, list[str]] = {}

    def add(self, label: int, key: Any, record_id: str, path: str) -> None:
        self.sizes[label] = self.sizes.get(label, 0) + 1
        if label not in self.best or key < self.best[label][0]:
            self.best[label] = (key, record_id, path)
        group = self.members.setdefault(label, [])
        if len(group) < MEMBERS_LISTED:
            group.append(path)

    def winner(self, label: int) -> str:
        return self.best[label][1]

    def clusters(self, sizes: Mapping[int, int] | None = None) -> list[ClusterInfo]:
        """The clusters in order of first appearance (``sizes``: when not all were added)."""
        sizes = self.sizes if sizes is None else sizes
        return [
            {"size": int(sizes[label]), "survivor": path, "members": self.members[label]}
            for label, (_, _, path) in self.best.items()
        ]


@dataclass
class HeldCounts:
    """What fuzzy dedup's global step counted: records held (with MinHash), records without
    shingles (file level: kept at once), signatures computed by the stage itself (no ``minhash``
    stage before it, or one configured otherwise). Summed over shards by a shard executor."""

    held: int = 0
    no_shingles: int = 0
    computed_here: int = 0

    def add(self, other: HeldCounts) -> None:
        self.held += other.held
        self.no_shingles += other.no_shingles
        self.computed_here += other.computed_here


@dataclass
class RepoTable:
    """Per repository: the element-wise minimum of its files' signatures and the best value of
    each priority field over its files (a repository is one document at repository level)."""

    priority: tuple[Term, ...]
    sigs: dict[str, Signature] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: Record, sig: Signature | None) -> None:
        repo = repository_of(record)
        values = self.values.setdefault(repo, {"files": 0})
        values["files"] += 1
        for name, descending in self.priority:
            value = field_value(record, name)
            if value is None:
                continue
            current = values.get(name)
            if current is None or better(value, current, descending):
                values[name] = value
        if sig is None:
            return
        current_sig = self.sigs.get(repo)
        self.sigs[repo] = sig.copy() if current_sig is None else np.minimum(current_sig, sig)

    def merge(self, partial: RepoPartial) -> None:
        """Fold in another table's :meth:`partial` (of later input: the minimum and the first
        best value are the same in any grouping, so merging in shard order equals one pass)."""
        for repo, (sig_b, values) in partial.items():
            sig = None if sig_b is None else np.frombuffer(sig_b, dtype=np.uint32)
            cur = self.values.get(repo)
            if cur is None:
                self.values[repo] = dict(values)
            else:
                cur["files"] = cur.get("files", 0) + values.get("files", 0)
                for name, descending in self.priority:
                    value = values.get(name)
                    if value is None:
                        continue
                    current = cur.get(name)
                    if current is None or better(value, current, descending):
                        cur[name] = value
            if sig is not None:
                cur_sig = self.sigs.get(repo)
                self.sigs[repo] = sig.copy() if cur_sig is None else np.minimum(cur_sig, sig)

    def partial(self, repos: Iterable[str] | None = None) -> RepoPartial:
        """The table (or the given repositories of it) as picklable plain data."""
        names = self.values if repos is None else repos
        out: RepoPartial = {}
        for repo in names:
            sig = self.sigs.get(repo)
            out[repo] = (None if sig is None else sig.tobytes(), dict(self.values[repo]))
        return out

    def state(self) -> dict[str, Any]:
        return {
            "repo_sigs": {k: v.tobytes() for k, v in self.sigs.items()},
            "repo_values": {k: dict(v) for k, v in self.values.items()},
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.sigs = {
            k: np.frombuffer(v, dtype=np.uint32).copy() for k, v in state["repo_sigs"].items()
        }
        self.values = {k: dict(v) for k, v in state["repo_values"].items()}

    def key_for(self, repo: str) -> tuple[Any, ...]:
        """The survivor sort key of a repository (its aggregate values, then its name)."""
        values = dict(self.values[repo])
        values["repo"] = repo
        values.setdefault("id", repo)
        return tuple(values_key(values, self.priority))

    def cluster(self, params: MinHashParams) -> RepoClusters:
        """Near-duplicate repositories by LSH over their signatures; one winner per cluster."""
        repos = sorted(self.sigs)
        out = RepoClusters(repositories=len(self.values), with_signature=len(repos))
        if not repos:
            return out
        labels = cluster_labels(band_keys(np.stack([self.sigs[r] for r in repos]), params))
        groups: dict[int, list[str]] = {}
        for repo, label in zip(repos, labels.tolist(), strict=True):
            groups.setdefault(label, []).append(repo)
        for group in groups.values():
            if len(group) < 2:
                continue
            win = min(group, key=self.key_for)
            for repo in group:
                out.winner_of[repo] = win
                if repo != win:
                    out.dropped_files += self.values[repo]["files"]
            files = sum(self.values[r]["files"] for r in group)
            out.clusters.append(
                {
                    "size": len(group),
                    "survivor": win,
                    "members": sorted(group)[:MEMBERS_LISTED],
                    "files": files,
                }
            )
        return out


@dataclass
class RepoClusters:
    """The repository-level decision: every clustered repository -> its cluster's winner."""

    repositories: int = 0
    with_signature: int = 0
    winner_of: dict[str, str] = field(default_factory=dict)
    clusters: list[ClusterInfo] = field(default_factory=list)
    dropped_files: int = 0

    def losers(self) -> dict[str, str]:
        return {repo: win for repo, win in self.winner_of.items() if repo != win}


def cluster_sizes(clusters: Iterable[ClusterInfo]) -> dict[str, int]:
    sizes = Counter(c["size"] for c in clusters)
    return {str(k): v for k, v in sorted(sizes.items())}
