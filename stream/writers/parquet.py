"""Sharded Parquet: the record fields as string columns, ``meta`` as a JSON string."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from codekiln.stream.record import Record
from codekiln.stream.writers.base import ShardWriter

_FIELDS = ("id", "text", "lang", "path", "repo", "source", "meta", "reason")


class ParquetWriter(ShardWriter):
    suffix = ".parquet"

    def __init__(self, folder: Path, **kw: Any) -> None:
        import pyarrow as pa

        self._schema = pa.schema([(name, pa.string()) for name in _FIELDS])
        self._writer: Any = None
        super().__init__(folder, **kw)

    def _open(self, tmp: Path) -> None:
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(str(tmp), self._schema, compression="zstd")

    def _write(self, records: list[Record]) -> int:
        import pyarrow as pa

        columns: dict[str, list[str | None]] = {name: [] for name in _FIELDS}
        size = 0
        for r in records:
            meta = json.dumps(r.meta, ensure_ascii=False, sort_keys=True)
            for name, value in (
                ("id", r.id),
                ("text", r.text),
                ("lang", r.lang),
                ("path", r.path),
                ("repo", r.repo),
                ("source", r.source),
                ("meta", meta),
                ("reason", r.drop_reason),
            ):
                columns[name].append(value)
            size += len(r.text) + len(meta)
        self._writer.write_table(pa.table(columns, schema=self._schema))
        return size

    def _close(self) -> tuple[str, int]:
        assert self._tmp is not None
        self._writer.close()
        self._writer = None
        sha = hashlib.sha256()
        with open(self._tmp, "rb+") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                sha.update(chunk)
            os.fsync(fh.fileno())
        return sha.hexdigest(), self._tmp.stat().st_size
