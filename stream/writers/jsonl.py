"""Sharded JSONL.zst: one JSON object per line, one independent zstd frame per shard."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import zstandard
from codekiln.stream.record import Record
from codekiln.stream.writers.base import HashingFile, ShardWriter

from codekiln.shards import read_objects


def json_line(record: Record) -> bytes:
    """One record as a line of compact JSON in UTF-8.

    orjson (about 5x the standard library's encoder on code text); a record it refuses (a lone
    surrogate in a text, which is not UTF-8; an integer over 64 bits) is written by the
    standard library instead, lone surrogates escaped, so that nothing is altered or lost.
    """
    obj = record.to_json()
    try:
        return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        # As orjson writes them: a NaN or infinity is null (json.dumps would write NaN, which
        # is not JSON).
        return (json.dumps(_finite(obj), separators=(",", ":")) + "\n").encode("ascii")


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (containers copied)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class JsonlZstWriter(ShardWriter):
    suffix = ".jsonl.zst"

    def __init__(self, folder: Path, *, level: int = 3, **kw: Any) -> None:
        self.level = level
        self._fh: BinaryIO | None = None
        self._hashing: HashingFile | None = None
        self._zw: Any = None
        super().__init__(folder, **kw)

    def _open(self, tmp: Path) -> None:
        self._fh = open(tmp, "wb")  # noqa: SIM115 - closed in _close
        self._hashing = HashingFile(self._fh)
        # threads=0: single-threaded compression is deterministic, so a resumed run writes
        # byte-identical shards.
        cctx = zstandard.ZstdCompressor(level=self.level, threads=0)
        self._zw = cctx.stream_writer(self._hashing, closefd=False)  # type: ignore[arg-type]

    def _write(self, records: list[Record]) -> int:
        data = b"".join(map(json_line, records))
        self._zw.write(data)
        return len(data)

    def _close(self) -> tuple[str, int]:
        assert self._fh is not None
        assert self._hashing is not None
        self._zw.flush(zstandard.FLUSH_FRAME)
        self._zw.close()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        sha, size = self._hashing.sha256.hexdigest(), self._hashing.size
        self._fh = self._hashing = self._zw = None
        return sha, size


def read_jsonl_zst(path: Path) -> list[dict[str, Any]]:
    """Every object of one shard (for tests, reports and tools; shards are bounded in size).

    codekiln.shards reads it: lines split on the line-feed byte only (U+2028 and the like stay
    inside a record), and a shard cut off mid-frame or a line that is not an object is a
    ``ShardError`` naming the line, never a shorter list.
    """
    return read_objects(path)
