"""Parquet shards: one record per row, the same field rules as JSONL (``text_key``, ``id_key``).

Quarantined with a reason: ``missing_text`` (a null or non-string text; or no ``text_key``
column at all: one reject for the shard naming the columns it has), ``oversize``, ``empty`` (a
zero-byte file), ``corrupt`` (not readable as Parquet: one reject for the shard). The run goes
on either way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codekiln.stream.readers.base import Budget, Item, Position, reject
from codekiln.stream.record import Record, record_id

_KNOWN = ("lang", "path", "repo", "source", "meta")


class ParquetReader:
    def __init__(
        self,
        files: list[Path],
        root: Path,
        *,
        text_key: str,
        id_key: str,
        max_text_bytes: int,
        source: str | None = None,
    ) -> None:
        self.files = files
        self.root = root
        self.text_key = text_key
        self.id_key = id_key
        self.max_text_bytes = max_text_bytes
        self.source = source or root.resolve().name

    def items(self, after: Position | None, budget: Budget) -> Iterator[Item]:
        first_file, after_row = (after[0], after[1]) if after else (0, -1)
        for index, path in enumerate(self.files):
            if index < first_file:
                continue
            skip_to = after_row if index == first_file else -1
            for row, record in self._read_file(path, skip_to, budget):
                yield (index, row), record
            if budget.exhausted:
                budget.not_read += len(self.files) - index - 1
                return

    def _read_file(self, path: Path, skip_to: int, budget: Budget) -> Iterator[tuple[int, Record]]:
        import pyarrow.parquet as pq

        shard = path.name if path == self.root else path.relative_to(self.root).as_posix()
        try:
            if path.stat().st_size == 0:
                if skip_to < 0:
                    yield 0, reject(self.source, f"{shard}:0", "empty", path=shard)
                return
            pf = pq.ParquetFile(path)
            names = pf.schema_arrow.names
        except Exception as exc:
            if skip_to < 0:
                yield (
                    0,
                    reject(self.source, f"{shard}:0", "corrupt", path=shard, error=str(exc)[:300]),
                )
            return
        if self.text_key not in names:
            if skip_to < 0:
                error = f"no column {self.text_key!r} (columns: {', '.join(names)[:200]})"
                yield 0, reject(self.source, f"{shard}:0", "missing_text", path=shard, error=error)
            return
        row = 0  # rows are numbered from 1, like JSONL lines
        for group in range(pf.num_row_groups):
            n = pf.metadata.row_group(group).num_rows
            if row + n <= skip_to:
                row += n
                continue
            # Small record batches: a row group can hold millions of rows.
            for chunk in pf.iter_batches(batch_size=1024, row_groups=[group]):
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
        raw_id = obj.get(self.id_key)
        rid = (
            str(raw_id)
            if isinstance(raw_id, str | int) and raw_id != ""
            else record_id(self.source, key)
        )
        meta_raw = obj.get("meta")
        if isinstance(meta_raw, str):
            try:
                meta_raw = json.loads(meta_raw)
            except json.JSONDecodeError:
                meta_raw = {"meta": meta_raw}
        meta: dict[str, Any] = dict(meta_raw) if isinstance(meta_raw, dict) else {}
        for k, v in obj.items():
            if k not in (self.text_key, self.id_key, *_KNOWN) and v is not None:
                meta.setdefault(k, v)
        return Record(
            id=rid,
            text=text,
            lang=str(obj.get("lang") or ""),
            path=str(obj.get("path") or ""),
            repo=str(obj.get("repo") or ""),
            source=str(obj.get("source") or self.source),
            meta=meta,
        )
