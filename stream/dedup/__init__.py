"""Exact (SHA-256) and fuzzy (MinHash + LSH) dedup stages, and the functions they share.

The plain functions are the public surface other executors (the Ray dedup) reuse, so that they
make the same decisions: shingles, signatures and band keys in :mod:`.minhash`
(``word_hashes``, ``shingle_hashes``, ``signatures``, ``band_keys``, ``repository_signature``),
clustering in :mod:`.lsh` (``candidate_edges``, ``cluster_labels``), the survivor order in
:mod:`.priority` (``parse_priority``, ``sort_key``, ``values_key``), survivors and repository
aggregates in :mod:`.clusters`. The global steps over shards (partial per shard, merge, apply)
that a sharded executor runs are :mod:`.exact_shards` and :mod:`.fuzzy_shards`.
"""

from codekiln.stream.dedup.exact import ExactDedupStage, content_hash
from codekiln.stream.dedup.fuzzy import FuzzyDedupStage, MinHashStage
from codekiln.stream.dedup.minhash import PRESETS, MinHashParams
from codekiln.stream.dedup.priority import DEFAULT_PRIORITY, parse_priority, sort_key

__all__ = [
    "DEFAULT_PRIORITY",
    "PRESETS",
    "ExactDedupStage",
    "FuzzyDedupStage",
    "MinHashParams",
    "MinHashStage",
    "content_hash",
    "parse_priority",
    "sort_key",
]
