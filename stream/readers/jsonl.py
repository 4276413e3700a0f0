"""JSONL shards, plain, zstd- or gzip-compressed (as codekiln.shards writes them): one JSON object
per line.

A record takes ``text`` from ``text_key``, its id from ``id_key`` when the object has one
(else ``record_id(source, "<shard>:<line>")``), and ``lang``/``path``/``repo``/``meta`` when
present; any other keys land in ``meta``. Lines are numbered from 1; blank lines are skipped.

Quarantined with a reason: ``malformed_json``, ``not_object``, ``missing_text``, ``non_utf8``,
``oversize`` (a line above ``max_file_bytes``: never held in memory whole), ``empty`` (a shard
with no bytes), ``unreadable``, ``corrupt`` (a broken zstd or gzip stream: the rest of that
shard).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple, Unpack, cast

from codekiln.stream.readers.base import Budget, ShardFields, ShardReader, reject
from codekiln.stream.record import Record

from codekiln.shards import ShardError, corrupt_errors, open_zst

#: What ends a shard's reading with a ``corrupt`` reject for the rest of it.
_UNREADABLE: tuple[type[BaseException], ...] = (*corrupt_errors(), ShardError, OSError)


class _Shard(NamedTuple):
    """An open shard: the lines from ``lines``; ``disk.tell()`` is how far the file on disk is
    read (the compressed bytes of a .zst: its buffered reader reads ahead of the lines)."""

    lines: IO[bytes]
    disk: IO[bytes]


def _open(path: Path) -> _Shard:
    disk = open(path, "rb")  # noqa: SIM115 - closed with the lines reader
    if path.name.endswith(".zst"):
        # codekiln.shards' reader: a shard cut off mid-frame is an error (``corrupt``), where
        # zstandard's stream reader would end early as if the shard were complete.
        return _Shard(open_zst(disk), disk)
    if path.name.endswith(".gz"):
        return _Shard(cast(IO[bytes], gzip.GzipFile(fileobj=disk, mode="rb")), disk)
    return _Shard(disk, disk)


class JsonlReader(ShardReader[_Shard]):
    def __init__(
        self, files: list[Path], root: Path, *, max_line_bytes: int, **fields: Unpack[ShardFields]
    ) -> None:
        super().__init__(files, root, **fields)
        self.max_line_bytes = max_line_bytes

    def open_shard(self, path: Path) -> _Shard:
        return _open(path)

    def read_fraction(self, opened: _Shard, size: int) -> Callable[[], float]:
        disk = opened.disk
        return lambda: disk.tell() / size

    def open_failure(self, exc: Exception) -> tuple[str, str | None] | None:
        return ("unreadable", exc.strerror) if isinstance(exc, OSError) else None

    def read_opened(
        self, shard: str, opened: _Shard, skip_to: int, budget: Budget
    ) -> Iterator[tuple[int, Record]]:
        fh = opened.lines
        line_no = 0
        try:
            with fh, opened.disk:  # a GzipFile leaves its file open
                while True:
                    line = fh.readline(self.max_line_bytes + 1)
                    if not line:
                        return
                    line_no += 1
                    oversize = len(line) > self.max_line_bytes and not line.endswith(b"\n")
                    if oversize:
                        size = len(line) + _discard_rest_of_line(fh)
                    if line_no <= skip_to:
                        continue
                    if oversize:
                        yield (
                            line_no,
                            reject(
                                self.source, f"{shard}:{line_no}", "oversize", path=shard, size=size
                            ),
                        )
                        continue
                    if not line.strip():
                        continue
                    if not budget.admit(len(line)):
                        budget.not_read += 1
                        return
                    yield line_no, self._parse(shard, line_no, line)
        except _UNREADABLE as exc:
            yield (
                line_no + 1,
                reject(
                    self.source,
                    f"{shard}:{line_no + 1}",
                    "corrupt",
                    path=shard,
                    error=f"unreadable after line {line_no}: {exc}",
                ),
            )

    def _parse(self, shard: str, line_no: int, line: bytes) -> Record:
        key = f"{shard}:{line_no}"
        line = line.rstrip(b"\r\n")
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return reject(
                self.source,
                key,
                "non_utf8",
                path=shard,
                text=line.decode("utf-8", errors="replace"),
                error=str(exc)[:200],
            )
        try:
            obj = json.loads(decoded)
        except json.JSONDecodeError as exc:
            return reject(
                self.source, key, "malformed_json", path=shard, text=decoded, error=str(exc)
            )
        if not isinstance(obj, dict):
            return reject(self.source, key, "not_object", path=shard, text=decoded)
        text = obj.get(self.text_key)
        if not isinstance(text, str):
            return reject(
                self.source,
                key,
                "missing_text",
                path=shard,
                text=decoded,
                error=f"no string field {self.text_key!r}",
            )
        meta: dict[str, Any] = dict(obj["meta"]) if isinstance(obj.get("meta"), dict) else {}
        return self.shard_record(key, obj, text, meta, keep_null=True)


def _discard_rest_of_line(fh: IO[bytes]) -> int:
    skipped = 0
    while True:
        chunk = fh.readline(1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped
