"""Shard I/O shared by every component: JSONL, JSONL.zst (and .gz) and Parquet, read and write.

Every reader here accepts every format a codekiln writer produces, so a tool pointed at a
corpus a run wrote (``corpus/*.jsonl.zst``), a plain ``.jsonl`` file or a Parquet file reads
the same objects. A folder is read as the sorted shards below it (hidden files skipped).

Errors::

    ShardError             root: the path cannot be read as shards
    ├── UnknownFormat      no reader for this file name (the message lists the known suffixes)
    ├── NoShards           a folder holds no shard of a known format
    └── TruncatedStream    a compressed shard ends mid-frame (iter_lines: a ``corrupt`` line)

A bad *line* is not an exception: :func:`iter_lines` yields it as a :class:`BadLine` with
its number and reason, and the caller decides (quarantine, warn, or count).

Writes are atomic: a temp file in the same folder, fsync, rename, fsync of the folder, so a
crash leaves the old file or the new one, never half of one. ``codekiln.sandbox`` must never
import this module (it deploys alone).
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from codekiln.cli_common import InputNotFound

__all__ = [
    "JSONL_SUFFIXES",
    "PARQUET_SUFFIXES",
    "SHARD_SUFFIXES",
    "BadLine",
    "NoShards",
    "ShardError",
    "TruncatedStream",
    "UnknownFormat",
    "atomic_write_bytes",
    "corrupt_errors",
    "encode_jsonl",
    "fsync_dir",
    "iter_lines",
    "iter_numbered",
    "iter_objects",
    "open_text_lines",
    "open_zst",
    "read_objects",
    "shard_format",
    "shard_paths",
    "write_objects",
]

JSONL_SUFFIXES = (".jsonl", ".jsonl.zst", ".jsonl.gz", ".ndjson", ".ndjson.zst", ".ndjson.gz")
PARQUET_SUFFIXES = (".parquet",)
SHARD_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES


class ShardError(Exception):
    """Root of the errors of this module: the path cannot be read as shards."""


class UnknownFormat(ShardError):
    """A file whose name ends in no suffix this module reads."""


class NoShards(ShardError):
    """A folder with no shard of a known format below it."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line (or row) that is not a JSON object: its number (from 1) and why."""

    number: int
    reason: str  # malformed_json | not_object | non_utf8 | corrupt
    error: str


def shard_format(path: Path) -> str:
    """``"jsonl"`` or ``"parquet"`` from the file name; :class:`UnknownFormat` otherwise."""
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise UnknownFormat(
        f"{path}: not a shard file (expected a name ending in {', '.join(SHARD_SUFFIXES)})"
    )


def shard_paths(path: Path) -> list[Path]:
    """``path`` itself if it is a file, else the sorted shard files below the folder.

    A missing path is :class:`~codekiln.cli_common.InputNotFound` (a ``FileNotFoundError``:
    every CLI answers it with exit 2); a folder without shards is :class:`NoShards`; a file of an
    unknown format is :class:`UnknownFormat`.
    """
    if path.is_dir():
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.name.lower().endswith(SHARD_SUFFIXES)
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            raise NoShards(f"{path}: no shard files in this folder ({', '.join(SHARD_SUFFIXES)})")
        return found
    if not path.exists():
        raise InputNotFound(f"no such file or folder: {path}")
    shard_format(path)
    return [path]


class TruncatedStream(ShardError):
    """A compressed stream that ends before its last frame does (a shard cut short)."""


def _zst_chunks(fh: IO[bytes]) -> Iterator[bytes]:
    """The decompressed bytes of every zstd frame in ``fh``; a frame cut short raises.

    zstandard's stream reader returns a short read without error when the input ends
    mid-frame, which would make a truncated shard read as a shorter, valid one.
    """
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    dobj = dctx.decompressobj()
    pending = False  # bytes of an unfinished frame were consumed
    while True:
        data = fh.read(1 << 16)  # small reads bound the output of one decompress call
        if not data:
            break
        while data:
            out = dobj.decompress(data)
            if out:
                yield out
            if dobj.eof:
                data = dobj.unused_data
                dobj = dctx.decompressobj()
                pending = False
            else:
                data = b""
                pending = True
    if pending:
        raise TruncatedStream("the zstd stream ends in the middle of a frame")


class _ZstRaw(io.RawIOBase):
    """A readable raw stream of the decompressed bytes of a .zst file (see :func:`open_zst`)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._chunks = _zst_chunks(fh)
        self._pending = memoryview(b"")  # a view: no copy of the rest on every read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def open_zst(path: Path | IO[bytes]) -> IO[bytes]:
    """A buffered binary reader of a .zst file's decompressed bytes (``readline`` and all).

    Unlike zstandard's stream reader it raises :class:`TruncatedStream` where the file ends
    inside a frame, instead of ending early as if the data were complete. ``path`` may be the
    file already opened (binary): the reader closes it, and its ``tell()`` says how much of
    the compressed file has been read.
    """
    # Closed with the returned reader.
    fh = open(path, "rb") if isinstance(path, str | os.PathLike) else path  # noqa: SIM115
    raw = _ZstRaw(fh)
    return io.BufferedReader(raw, buffer_size=1 << 20)


def _split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line + b"\n"
    if rest:
        yield rest


def open_text_lines(path: Path) -> Iterator[bytes]:
    """The raw lines (with their line break) of a JSONL file, decompressed by its suffix.

    Lines split on the line-feed byte only (as the writer writes them): U+2028 and the like
    stay inside a record.
    """
    name = path.name.lower()
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as gz:
            yield from _split_lines(iter(lambda: gz.read(1 << 20), b""))
        return
    with open(path, "rb") as fh:
        if name.endswith(".zst"):
            yield from _split_lines(_zst_chunks(fh))
        else:
            yield from fh


def corrupt_errors() -> tuple[type[BaseException], ...]:
    """What reading a compressed shard raises where its stream is broken or cut short (gzip,
    zstd, :class:`TruncatedStream`): the rest of the shard is ``corrupt``."""
    errors: list[type[BaseException]] = [EOFError, gzip.BadGzipFile, TruncatedStream]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:  # pragma: no cover - zstandard is a dependency
        pass
    return tuple(errors)


def iter_lines(
    path: Path, *, limit: int | None = None, fmt: str | None = None
) -> Iterator[dict[str, Any] | BadLine]:
    """Each JSON object of one shard file, or a :class:`BadLine` where a line is not one.

    Parquet rows come as dicts of their columns. ``limit``: stop after this many lines (or
    rows), blank lines included, as ``head -n`` would. A compressed stream that breaks
    mid-file yields one ``corrupt`` BadLine and ends.
    """
    for _, item in iter_numbered(path, limit=limit, fmt=fmt):
        yield item


def iter_numbered(
    path: Path, *, limit: int | None = None, fmt: str | None = None
) -> Iterator[tuple[int, dict[str, Any] | BadLine]]:
    """:func:`iter_lines` with each item's line (or row) number, counted from 1.

    ``fmt`` (``jsonl`` or ``parquet``) reads a file whatever its name (JSON lines in a
    ``.txt``); by default the name decides, and an unknown suffix is :class:`UnknownFormat`.
    """
    if (fmt or shard_format(path)) == "parquet":
        yield from _parquet_rows(path, limit)
        return
    number = 0
    try:
        for line in open_text_lines(path):
            number += 1
            if limit is not None and number > limit:
                return
            if not line.strip():
                continue
            try:
                obj = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield number, BadLine(number, "non_utf8", str(exc)[:200])
                continue
            except json.JSONDecodeError as exc:
                yield number, BadLine(number, "malformed_json", str(exc))
                continue
            if not isinstance(obj, dict):
                kind = type(obj).__name__
                yield number, BadLine(number, "not_object", f"a JSON {kind}, not an object")
                continue
            yield number, obj
    except corrupt_errors() as exc:
        bad = BadLine(number + 1, "corrupt", f"unreadable after line {number}: {exc}")
        yield number + 1, bad


def _parquet_rows(path: Path, limit: int | None) -> Iterator[tuple[int, dict[str, Any] | BadLine]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        yield 1, BadLine(1, "corrupt", f"not readable as Parquet: {exc}")
        return
    number = 0
    for batch in pf.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            if limit is not None and number > limit:
                return
            yield number, _as_record_object(row)


def _as_record_object(row: dict[str, Any]) -> dict[str, Any]:
    """A row of a codekiln Parquet shard as the object its JSONL twin holds.

    The stream's Parquet writer stores ``meta`` as JSON text and a ``reason`` column that is
    null for live records; the JSONL writer writes ``meta`` as an object and no ``reason``.
    """
    meta = row.get("meta")
    if isinstance(meta, str) and meta.startswith("{"):
        try:
            decoded = json.loads(meta)
        except json.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict):
            row["meta"] = decoded
    if "reason" in row and row["reason"] is None:
        del row["reason"]
    return row


def iter_objects(
    path: Path, *, limit: int | None = None
) -> Iterator[tuple[Path, int, dict[str, Any] | BadLine]]:
    """``(shard, line number, object or bad line)`` of a shard file or every shard of a folder."""
    for shard in shard_paths(path):
        for number, item in iter_numbered(shard, limit=limit):
            yield shard, number, item


def read_objects(path: Path) -> list[dict[str, Any]]:
    """Every object of a shard file or folder; a bad line is a :class:`ShardError`."""
    out: list[dict[str, Any]] = []
    for shard, _, item in iter_objects(path):
        if isinstance(item, BadLine):
            raise ShardError(f"{shard}:{item.number}: {item.reason}: {item.error}")
        out.append(item)
    return out


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (the folder entry, not only the file data)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def encode_jsonl(objects: Iterable[dict[str, Any]]) -> bytes:
    """Compact JSON lines, non-ASCII kept as UTF-8."""
    return b"".join(
        (json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        for o in objects
    )


def write_objects(path: Path, objects: Iterable[dict[str, Any]], *, zstd_level: int = 3) -> int:
    """Write ``objects`` atomically: JSONL (zstd- or gzip-compressed by the suffix) or Parquet.

    Returns the number of objects written. An empty iterable writes an empty (valid) shard.
    """
    rows = list(objects)
    data = encode_jsonl(rows)
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), sink, compression="zstd")
        data = sink.getvalue()
    elif name.endswith(".zst"):
        import zstandard

        data = zstandard.ZstdCompressor(level=zstd_level, threads=0).compress(data)
    elif name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif not name.endswith(JSONL_SUFFIXES):
        shard_format(path)  # raises UnknownFormat
    atomic_write_bytes(path, data)
    return len(rows)
