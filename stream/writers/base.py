"""What every sharded writer shares: durable commit and the list of committed shards.

A shard is written to a hidden temp file and becomes visible only on commit: flush, fsync,
rename to its final name, fsync of the folder. The writer's list of committed shards is part
of the run's checkpoint; on resume, :meth:`ShardWriter.restore` deletes every shard file the
checkpoint does not name (written after it, before a crash) and numbering continues from there,
so a resumed run rewrites exactly the same shards.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

from codekiln.stream.record import Record

from codekiln.shards import fsync_dir


class HashingFile:
    """A write-only file wrapper that hashes and counts what passes through."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


class ShardWriter:
    """Rolls shards by record count and uncompressed size; subclasses encode records."""

    suffix = ".bin"

    def __init__(self, folder: Path, *, prefix: str, max_records: int, max_bytes: int) -> None:
        self.folder = folder
        self.prefix = prefix
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.shards: list[dict[str, Any]] = []
        self._records = 0
        self._bytes = 0
        self._tmp: Path | None = None
        self._pattern = re.compile(rf"^{re.escape(prefix)}-\d+{re.escape(self.suffix)}$")
        folder.mkdir(parents=True, exist_ok=True)

    # -- subclass hooks ------------------------------------------------------------------
    def _open(self, tmp: Path) -> None:
        raise NotImplementedError

    def _write(self, records: list[Record]) -> int:
        """Append records to the open shard; returns uncompressed bytes written."""
        raise NotImplementedError

    def _close(self) -> tuple[str, int]:
        """Finish the open shard durably (data fsynced); returns (sha256, size on disk)."""
        raise NotImplementedError

    # -- public --------------------------------------------------------------------------
    def _name(self, index: int) -> str:
        return f"{self.prefix}-{index:05d}{self.suffix}"

    def write(self, records: list[Record]) -> None:
        start = 0
        while start < len(records):
            if self._tmp is None:
                self._tmp = self.folder / f".{self._name(len(self.shards))}.tmp"
                self._open(self._tmp)
            room = self.max_records - self._records
            chunk = records[start : start + room]
            self._bytes += self._write(chunk)
            self._records += len(chunk)
            start += len(chunk)
            if self._records >= self.max_records or self._bytes >= self.max_bytes:
                self.commit()

    def commit(self) -> None:
        """Make the open shard (if any) durable and visible."""
        if self._tmp is None:
            return
        sha, size = self._close()
        name = self._name(len(self.shards))
        os.replace(self._tmp, self.folder / name)
        fsync_dir(self.folder)
        self.shards.append(
            {
                "file": name,
                "records": self._records,
                "bytes": self._bytes,
                "size": size,
                "sha256": sha,
            }
        )
        self._tmp = None
        self._records = 0
        self._bytes = 0

    def finish(self) -> None:
        """The last commit of a run: an output with no record still gets one (empty) shard.

        A reader pointed at the folder then finds a valid, empty corpus of the configured
        format instead of nothing at all (which reads like a run that never wrote).
        """
        if self._tmp is None and not self.shards:
            self._tmp = self.folder / f".{self._name(0)}.tmp"
            self._open(self._tmp)
        self.commit()

    def restore(self, shards: list[dict[str, Any]]) -> None:
        """Start from a checkpoint's committed shards: delete anything written after it."""
        self.shards = [dict(s) for s in shards]
        keep = {s["file"] for s in shards}
        for path in self.folder.iterdir():
            stale_tmp = path.name.startswith(".") and path.name.endswith(".tmp")
            if stale_tmp or (self._pattern.match(path.name) and path.name not in keep):
                path.unlink(missing_ok=True)

    def abort(self) -> None:
        """Drop the open shard without committing it (the run is failing)."""
        if self._tmp is not None:
            with contextlib.suppress(Exception):  # best effort while the run is failing
                self._close()
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
