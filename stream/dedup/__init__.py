"""Exact (SHA-256) and fuzzy (MinHash + LSH) dedup stages, and the functions they share.

The plain functions (shingling, signatures, band keys in :mod:`.minhash`; the survivor order in
:mod:`.priority`) are the public surface other executors reuse.
"""

from codekiln.stream.dedup.exact import ExactDedupStage, content_hash
from codekiln.stream.dedup.priority import DEFAULT_PRIORITY, parse_priority, sort_key

__all__ = [
    "DEFAULT_PRIORITY",
    "ExactDedupStage",
    "content_hash",
    "parse_priority",
    "sort_key",
]
