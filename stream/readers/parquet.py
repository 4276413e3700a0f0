"""Parquet shards: one record per row, the same field rules as JSONL (``text_key``, ``id_key``).

Quarantined with a reason: ``missing_text`` (a null or non-string text; or no ``text_key``
column at all: one reject for the shard naming the columns it has), ``oversize``, ``empty`` (a
zero-byte file), ``corrupt`` (not readable as Parquet: one reject for the shard). The run goes
on either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Unpack

from codekiln.stream.readers.base import Budget, ShardFields, ShardReader, reject
from codekiln.stream.record import Record


class ParquetReader(ShardReader[tuple[Any, list[str]]]):
    def __init__(
        self, files: list[Path], root: Path, *, max_text_bytes: int, **fields: Unpack[ShardFields]
    ) -> None:
        super().__init__(files, root, **fields)
        self.max_text_bytes = max_text_bytes
        #: Rows of the open shard read (those skipped on resume included), counted per chunk.
        self._rows_read = 0

    def open_shard(self, path: Path) -> tuple[Any, list[str]]:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        return pf, pf.schema_arrow.names

    def read_fraction(self, opened: tuple[Any, list[str]], size: int) -> Callable[[], float]:
        rows = opened[0].metadata.num_rows
        self._rows_read = 0
        return lambda: self._rows_read / rows if rows else 1.0

    def open_failure(self, exc: Exception) -> tuple[str, str | None] | None:
        return "corrupt", str(exc)[:300]

    def read_opened(
        self, shard: str, opened: tuple[Any, list[str]], skip_to: int, budget: Budget
    ) -> Iterator[tuple[int, Record]]:
        pf, names = opened
        if self.text_key not in names:
            if skip_to < 0:
                error = f"no column {self.text_key!r} (columns: {', '.join(names)[:200]})"
                yield 0, self.shard_reject(shard, "missing_text", error=error)
            return
        row = 0  # rows are numbered from 1, like JSONL lines
        for group in range(pf.num_row_groups):
            n = pf.metadata.row_group(group).num_rows
            if row + n <= skip_to:
                row += n
                continue
            # Small record batches: a row group can hold millions of rows.
            for chunk in pf.iter_batches(batch_size=1024, row_groups=[group]):
                self._rows_read = row + chunk.num_rows
                for obj in chunk.to_pylist():
                    row += 1
                    if row <= skip_to:
                        continue
                    record = self._record(shard, row, obj)
                    if record.drop_reason is None and not budget.admit(len(record.text)):
                        budget.not_read += 1
                        return
                    yield row, record

    def _record(self, shard: str, row: int, obj: dict[str, Any]) -> Record:
        key = f"{shard}:{row}"
        text = obj.get(self.text_key)
        if not isinstance(text, str):
            return reject(
                self.source, key, "missing_text", path=shard, error="null or non-string text"
            )
        if len(text.encode("utf-8", errors="replace")) > self.max_text_bytes:
            return reject(self.source, key, "oversize", path=shard, size=len(text))
        meta_raw = obj.get("meta")
        if isinstance(meta_raw, str):
            try:
                meta_raw = json.loads(meta_raw)
            except json.JSONDecodeError:
                meta_raw = {"meta": meta_raw}
        meta: dict[str, Any] = dict(meta_raw) if isinstance(meta_raw, dict) else {}
        return self.shard_record(key, obj, text, meta, keep_null=False)
