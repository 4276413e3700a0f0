"""Intermediate shard files and completion markers, on storage every Ray node shares.

A shard file holds every record of one shard after one map step, live and dropped, in input
order, as zstd-compressed pickled batches: written and read a batch at a time, so a task's
memory is one batch whatever the shard size. A record's index in its shard file is its local id
in the dedup shuffles. Files and markers are committed atomically (temp, fsync, rename): a task
killed midway leaves nothing a resume would trust, and a retried task rewrites the same bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import zstandard
from codekiln.stream.record import Record

from codekiln.shards import atomic_write_bytes, fsync_dir


class ShardFileWriter:
    """Appends batches to a hidden temp file; :meth:`commit` makes it visible under ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Unique per writer: a zombie task of a dead driver may still write the same shard.
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._raw: IO[bytes] = open(self.tmp, "wb")  # noqa: SIM115 - closed by commit/abort
        self._zst = zstandard.ZstdCompressor(level=1).stream_writer(self._raw, closefd=False)
        self.records = 0

    def write(self, records: list[Record]) -> None:
        if records:
            pickle.dump(records, self._zst, protocol=pickle.HIGHEST_PROTOCOL)
            self.records += len(records)

    def commit(self) -> None:
        self._zst.close()  # type: ignore[no-untyped-call]
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)

    def abort(self) -> None:
        self._raw.close()
        remove_quietly(self.tmp)


def read_batches(path: Path) -> Iterator[list[Record]]:
    with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as zst:
        while True:
            try:
                batch = pickle.load(zst)
            except EOFError:
                return
            yield batch


def read_records(path: Path) -> Iterator[Record]:
    for batch in read_batches(path):
        yield from batch


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(obj, sort_keys=True, default=str).encode())


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None


def write_pickle(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def read_pickle(path: Path) -> Any:
    try:
        return pickle.loads(path.read_bytes())
    except FileNotFoundError:
        return None


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
