"""LSH candidate pairs and duplicate clusters.

Two indexes, one result (documents that share a band, closed transitively into clusters):

- :func:`cluster_labels` (the default "bands" index): band keys of all documents, one sorted pass
  per band; documents with equal keys in a band are joined, and connected components close the
  graph (:func:`components`, a numpy union-find). 128 bytes per document for 16 bands, no
  Python loop per document, and the index *is* an append-only array, so checkpointing it costs
  a file length.
- :class:`DatasketchIndex`: datasketch's ``MinHashLSH``, queried then inserted document by
  document (online), with its storage backends (``storage_config``: in-memory dict by default,
  or ``{"type": "redis", "redis": {"host": ..., "port": ...}, "basename": b"..."}`` for an index
  shared by several workers). Used where a shared or persistent index matters more than speed.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import numpy.typing as npt
from codekiln.stream.dedup.minhash import U32, U64, MinHashParams

Labels = npt.NDArray[np.int64]


def candidate_edges(keys: U64) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs (i, j) of documents that share a band key, enough to connect every bucket."""
    bands = keys.shape[1]
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    for band in range(bands):
        column = keys[:, band]
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        same = np.flatnonzero(ordered[1:] == ordered[:-1])
        rows.append(order[same + 1])
        cols.append(order[same])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64)


#: Hooking rounds after which :func:`components` hands the graph to scipy instead (never seen
#: in practice: each round at least halves the roots of a path or a star).
_MAX_HOOK_ROUNDS = 64


def components(n: int, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]) -> Labels:
    """Connected-component label of each of ``n`` nodes given undirected edges.

    Labels are 0..k-1 in the order of each component's smallest node, as scipy's
    ``connected_components`` numbers them. A numpy union-find: every root that has an edge to
    a smaller root is hooked under the smallest such root, then pointers are jumped until each
    node points at its root; repeated until no edge joins two roots. Importing scipy costs a
    run ~0.3 CPU s, more than this takes on millions of edges.
    """
    if n == 0:
        return np.zeros(0, np.int64)
    parent = np.arange(n, dtype=np.int64)
    if rows.size == 0:
        return parent
    for _ in range(_MAX_HOOK_ROUNDS):
        a, b = parent[rows], parent[cols]
        apart = a != b
        if not apart.any():
            # Every root is its component's smallest node (parents only ever decrease):
            # the ranks of the roots are scipy's labels.
            rank = np.cumsum(parent == np.arange(n)) - 1
            return rank[parent].astype(np.int64)
        a, b = a[apart], b[apart]
        np.minimum.at(parent, np.maximum(a, b), np.minimum(a, b))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    return _scipy_components(n, rows, cols)


def _scipy_components(n: int, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]) -> Labels:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)


def cluster_labels(keys: U64) -> Labels:
    """Cluster label of each document (row of band keys); equal labels are near-duplicates."""
    rows, cols = candidate_edges(keys)
    return components(keys.shape[0], rows, cols)


def _datasketch_storage(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """``storage_config`` as datasketch takes it: a YAML config writes ``basename`` as text,
    datasketch's Redis storage prefixes its keys with it and needs bytes (a str basename fails
    with a TypeError at the first insert)."""
    if config is None or not isinstance(config.get("basename"), str):
        return config
    return {**config, "basename": config["basename"].encode("utf-8")}


class DatasketchIndex:
    """datasketch ``MinHashLSH`` over our signatures (same bands and rows)."""

    def __init__(self, params: MinHashParams, storage_config: dict[str, Any] | None = None) -> None:
        from datasketch import MinHashLSH

        self.params = params
        self.lsh = MinHashLSH(
            num_perm=params.num_perm,
            params=(params.bands, params.rows),
            storage_config=_datasketch_storage(storage_config),
        )

    def query_insert(self, key: int, sig: U32) -> list[int]:
        """Keys of indexed documents sharing a band with ``sig``; then index ``sig`` as ``key``."""
        from datasketch import LeanMinHash

        m = LeanMinHash(seed=self.params.seed, hashvalues=sig.astype(np.uint64), scheme="legacy")
        found = [int(k) for k in self.lsh.query(m)]
        if key not in self.lsh:
            self.lsh.insert(key, m, check_duplication=False)
        return found

    def remove_from(self, first_key: int) -> None:
        """Forget keys >= ``first_key`` (inserted after the checkpoint being restored)."""
        for stored in list(self.lsh.keys.keys()):
            # External storages keep keys pickled (datasketch's ``prepickle``).
            key = pickle.loads(stored) if self.lsh.prepickle else stored
            if int(key) >= first_key:
                self.lsh.remove(key)

    def close(self) -> None:
        """Close the connections of an external storage (each band table has its own)."""
        for storage in [self.lsh.keys, *self.lsh.hashtables]:
            client = getattr(storage, "_redis", None)
            if client is not None:
                client.close()
                client.connection_pool.disconnect()
