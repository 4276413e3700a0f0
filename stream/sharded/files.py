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
from codekiln.stream.runtime.errors import StageCrashed
from codekiln.stream.writers.jsonl import json_line

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
            try:
                data = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # a record pickle refuses: see carried()
                data = pickle.dumps(list(map(carried, records)), protocol=pickle.HIGHEST_PROTOCOL)
            self._zst.write(data)
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


def carried(record: Record) -> Record:
    """``record`` as a shard file can hold it. A dropped record that pickle refuses (a plugin
    left an object in its meta; the dedup stage quarantined it for that very reason, as it
    does locally) is carried as the JSON the run's sink writes for it, so it leaves as the
    same bytes. A live one cannot be carried to the next step: a clear error."""
    try:
        pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        if record.drop_reason is None:
            raise StageCrashed(
                "sharded",
                f"record {record.id} cannot be pickled into the shard file between two steps "
                f"({type(exc).__name__}: {exc}); a stage left an object pickle refuses in it: "
                "keep meta to plain data, or run with --executor local",
            ) from exc
        image = json.loads(json_line(record))
        return Record(
            image["id"],
            image["text"],
            image["lang"],
            image["path"],
            image["repo"],
            image["source"],
            image["meta"],
            image["reason"],
        )
    return record


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
