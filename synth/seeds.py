"""Seeds of a synthesis run: the corpus's records (:func:`iter_corpus`) and a deterministic
sample of code and prose records by smallest record id (:func:`pick_seeds`)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from pathlib import Path

from codekiln.stream.record import Record

from codekiln.shards import BadLine, ShardError, iter_objects

from .config import SynthConfig
from .errors import ConfigError

__all__ = ["iter_corpus", "pick_seeds"]


def iter_corpus(corpus_dir: Path) -> Iterator[Record]:
    """Records of a stream corpus folder: its shards in every format the stream writes
    (``*.jsonl.zst``, ``*.jsonl``, ``*.parquet``), read by codekiln.shards."""
    try:
        for _, _, obj in iter_objects(corpus_dir):
            if isinstance(obj, BadLine):
                continue  # the stream wrote the corpus; a bad line here is not ours to quarantine
            try:
                yield Record.from_json(obj)
            except (ValueError, KeyError, TypeError):
                continue
    except (ShardError, FileNotFoundError) as exc:
        raise ConfigError(f"no corpus shards (*.jsonl.zst, *.jsonl, *.parquet): {exc}") from exc


def pick_seeds(corpus: Iterable[Record], config: SynthConfig) -> tuple[list[Record], list[Record]]:
    """(code seeds, prose seeds): the smallest record ids that qualify, a deterministic sample."""
    code: list[tuple[str, int, Record]] = []
    prose: list[tuple[str, int, Record]] = []
    # The stream names languages as Linguist does ("Python", "Markdown"): compare folded.
    code_langs = {lang.casefold() for lang in config.seed_langs}
    prose_langs = {lang.casefold() for lang in config.web_langs}
    for i, r in enumerate(corpus):
        size = len(r.text)
        lang = r.lang.casefold()
        if lang in code_langs and config.seed_min_chars <= size <= config.seed_max_chars:
            _keep_smallest(code, (r.id, i, r), config.max_seeds)
        elif (lang in prose_langs or r.meta.get("lang_type") == "prose") and size >= 200:
            _keep_smallest(prose, (r.id, i, r), config.max_web_seeds)
    return [r for *_, r in sorted(code)], [r for *_, r in sorted(prose)]


def _keep_smallest(
    heap: list[tuple[str, int, Record]], item: tuple[str, int, Record], k: int
) -> None:
    # A max-heap by id (negated through the key trick: ids are hex, so invert the order).
    if k <= 0:
        return
    key = (_invert(item[0]), item[1], item[2])
    if len(heap) < k:
        heapq.heappush(heap, key)  # type: ignore[arg-type]
    elif key > heap[0]:  # type: ignore[operator]
        heapq.heapreplace(heap, key)  # type: ignore[arg-type]


def _invert(hex_id: str) -> str:
    return hex_id.translate(str.maketrans("0123456789abcdef", "fedcba9876543210"))
